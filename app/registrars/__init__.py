"""Domain registrars: settings of clients' domains (registrar calls come with the registrar modules)."""
