"""What polyformer's TensorFlow classes share (Keras 3 on the TensorFlow backend).

Importing this package imports nothing; `polyformer.tf.backend` imports TensorFlow and Keras and checks
them, and every TF module imports it first. See `backend` for why Keras 3 and which versions.
"""
