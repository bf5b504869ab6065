"""The center's web portal: public site and APIs (later: analyst views behind a login).

``cleancenter.portal.app.create_app`` builds one FastAPI application from a `Center` (or
its `Settings`); ``cleancenter serve`` (``cleancenter.portal.serve``) runs it under
uvicorn. Nothing is imported here, so that the command line does not load the web stack
until ``serve`` runs.
"""
