"""The graph core: socket types, graph model, validation, registry, workflow files.

Pure Python: importing it pulls in neither Qt nor torch.
"""
