"""The Textual staff app. Nothing outside this package imports Textual."""
