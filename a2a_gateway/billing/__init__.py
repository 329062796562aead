"""Credits: the ledger, packages for sale and Stripe payments."""
