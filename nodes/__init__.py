"""ComfyUI nodes (thin wrappers over trajcrafter_core). Filled in by the node-pack work."""

NODE_CLASS_MAPPINGS = {}
NODE_DISPLAY_NAME_MAPPINGS = {}
