"""The triage model: text preparation, features, the classifier, training and evaluation.

classify.py is what the daemon runs; train.py, evaluation.py and corpus.py make the
model; corrections.py feeds people's reclassifications back to training.
"""
