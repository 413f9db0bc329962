"""Server-rendered web pages: the shared foundation (templating, languages, CSRF,
static files) and the customer portal. The agent console builds on the same parts.
"""
