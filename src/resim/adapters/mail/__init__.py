"""Mail adapters for the :class:`resim.services.ports.Mailer` port.

* ``smtp.SmtpMailer``: the real thing, over SMTP with the standard library.
* ``fake.FakeMailer``: in memory, for tests.
* ``capture.MailCapture``: a loopback SMTP server that keeps mail as files
  (demo and integration tests); ``capture.read_mailbox`` reads them back.
* ``templates.render_mail``: customer messages in the customer's language.

Import the submodule you need; this package imports nothing on purpose (the
capture server pulls in aiosmtpd, which production workers do not need).
"""
