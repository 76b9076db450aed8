"""The bundled provider plugins, installed as ``plusjeklas_plugins``.

They are loaded through the ``plusjeklas`` entry-point group, like third-party plugins.
"""
