"""The billing engine: pure rules (money, cycles, tax, proration, numbering) and the services over models."""
