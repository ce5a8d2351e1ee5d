"""What the console charts: daily series and knowledge gaps read from the analytics views."""
