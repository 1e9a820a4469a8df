"""The platform, running: a web application on hutch's platform and auth plugins.

People sign up and in with a password, then share organisations, whose teams
have members and whose projects hold resources. Every page reads and writes
through the platform's repositories, each form is one transaction, and
sign-in sessions live in the store through ``AuthAdapter``. Serve it with
several workers on one data folder::

    HUTCH_URL=./data uvicorn --app-dir examples platform_app.main:app --workers 2

or ``make app``. ``docs/platform-app.md`` walks through it, one module per concern:

- ``main``: the application, its database per worker and the freshness middleware
- ``web``: what every page shares (the signed-in user, checked forms, rendering)
- ``security``: passwords, the session cookie, CSRF tokens
- ``accounts``, ``organisations``, ``teams``, ``projects``, ``resources``: the pages
"""
