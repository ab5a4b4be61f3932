"""What may steer or stop an unlearning run at its checkpoints: the retain budget (budget.py) and the
membership stop of a file request (membership.py), on a shared base (base.py)."""
