"""Natural-language search and smart paste for the portal.

The pure engines (``lexicon``, ``dates``, ``interpret``, ``matching``, ``paste``, ``model``) import no
Django: words in, plain data out, the clock passed in. ``catalogue`` loads what a portal user may
see into those engines, ``links`` turns an interpretation into the portal's own list filters, and
``portal`` holds the two use cases the views call.
"""
