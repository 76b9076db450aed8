"""The bundled provider plugins, installed as ``plusjeklas_plugins`` and loaded like third-party ones."""
