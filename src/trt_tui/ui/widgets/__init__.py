"""Small widgets, one concern each."""
