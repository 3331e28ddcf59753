"""TensorFlow Lite Micro integration: read a ``.tflite`` model's softmax operators, generate one
kernel per distinct parameter set and a TFLM registration that binds them
(``lutcodegen tflm``), and build real TFLM from its pinned sources for tests and benchmarks."""
