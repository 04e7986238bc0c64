"""What the tests need besides fixtures: servers of their own."""
