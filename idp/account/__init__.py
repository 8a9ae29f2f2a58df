"""The student's own pages: apps they use, what each received, cards, password."""
