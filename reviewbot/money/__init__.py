"""What reviews cost over time: the ledger of model requests, ``reviewbot costs``, and monthly budgets."""
