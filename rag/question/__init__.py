"""Question analysis: what is asked, about which period, expecting which answer type."""
