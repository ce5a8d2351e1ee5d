"""`groundwire eval`: retrieval quality and the "nothing relevant" threshold on BEIR data."""
