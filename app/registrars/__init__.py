"""Domain registrars behind one interface (base.RegistrarModule): the modules (local,
namecheap) by name (registry), availability through them or RDAP (availability, rdap),
the domain engine (domains) and the settings a domain's owner may change
(domain_settings)."""
