"""tunedeck's engine: the campaign on disk, the training and merge workers, and the CLI.

Modules at this level never import torch, transformers or peft; only ``engine.worker``
does, and it only runs inside worker processes.
"""
