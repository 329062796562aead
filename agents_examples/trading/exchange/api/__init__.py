"""The Agent Connect REST API (seed ``001_…``) over the exchange service: routes, exact JSON, sentiment."""
