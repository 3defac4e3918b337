"""Generation backends behind one interface (`base.Backend`)."""
