"""Collections: named document sets with one embedding space each."""
