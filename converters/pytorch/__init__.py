"""PyTorch: checkpoints read without torch (reader.py), state_dict -> ModelSpec (state_dict.py), and live
nn.Module objects when torch is installed (module.py)."""
