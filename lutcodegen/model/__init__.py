"""Tiny integer-only attention models: float model, post-training quantization, a bit-exact
numpy reference of the integer model, and the C generator for it.

Data flows one way, like the softmax generator's::

    float weights (.npz) + calibration images -> quantize() -> QuantModel (integer arrays)
        -> { intref.run (numpy, bit-exact), codegen.render_model (jinja2 -> one C file) }
"""
