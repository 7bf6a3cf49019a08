#!/usr/bin/env python3
"""A real SMTP server for braid's live tests, delivering into Dovecot Maildirs.

Started by scripts/mail-servers.sh (with the venv's python, which has
aiosmtpd); not meant to be run by hand, though it can be:

  smtp_server.py serve   --dir DIR [--smtp-port 10025] [--submission-port 10587]
  smtp_server.py deliver --dir DIR USER FILE_OR_DIR...

serve listens on 127.0.0.1 only:
  * SMTP port (default 10025): plain, no TLS, no AUTH; like an MX.
  * submission port (default 10587): STARTTLS with DIR/cert.pem + DIR/key.pem,
    STARTTLS required before MAIL, AUTH PLAIN/LOGIN required (only offered
    after STARTTLS), checked against DIR/users (Dovecot's passwd-file,
    `name:{PLAIN}password`, the same users and passwords IMAP has).
Every accepted message gets `Return-Path:` and `Received:` lines and is
written into DIR/mail/<user>/Maildir/new/ for each recipient whose local part
(lower-cased, `+detail` dropped, any domain) is a known user: tmp/ first, then
rename(2), chowned to nobody:nogroup, with a Dovecot-style unique name
(`<secs>.M<usecs>P<pid>Q<n>.<host>,S=<size>`). Unknown recipients get
`550 5.1.1 no such user`. Lines are stored with LF endings, as Dovecot's own
LDA stores them.

deliver copies raw RFC 5322 files (a directory: every regular file in it, in
name order, so Dovecot gives them UIDs in that order) into USER's INBOX the
same way, in this one process: 10,000 files take about a second.

Only the standard library is needed for `deliver`; `serve` needs aiosmtpd.
"""

import argparse
import asyncio
import email.utils
import grp
import hmac
import logging
import os
import pwd
import signal
import socket
import ssl
import sys
import time

log = logging.getLogger("smtp_server")

# ---------------------------------------------------------------------------
# Users (Dovecot passwd-file) and Maildir delivery: stdlib only.
# ---------------------------------------------------------------------------


class Users:
    """DIR/users, re-read when it changes."""

    def __init__(self, path):
        self.path = path
        self.mtime = None
        self.passwords = {}

    def _load(self):
        try:
            mtime = os.stat(self.path).st_mtime_ns
        except OSError as e:
            log.error("cannot stat %s: %s", self.path, e)
            return
        if mtime == self.mtime:
            return
        passwords = {}
        with open(self.path, encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                name, _, rest = line.partition(":")
                pw = rest.split(":", 1)[0]
                if pw.startswith("{PLAIN}"):
                    pw = pw[len("{PLAIN}"):]
                passwords[name.lower()] = pw
        self.passwords = passwords
        self.mtime = mtime

    def known(self, user):
        self._load()
        return user in self.passwords

    def check(self, user, password):
        self._load()
        want = self.passwords.get(user)
        return want is not None and hmac.compare_digest(
            want.encode("utf-8"), password.encode("utf-8"))


def user_of(address):
    """Mailbox user for an address or login: local part, lower-cased, +detail dropped."""
    address = address.strip().strip("<>")
    local = address.rsplit("@", 1)[0] if "@" in address else address
    local = local.strip('"').split("+", 1)[0]
    return local.lower()


def _ids():
    try:
        return pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid
    except KeyError:
        return None, None


_HOST = socket.gethostname().replace("/", r"\057").replace(":", r"\072") or "localhost"
_UID, _GID = _ids()
_last_us = 0
_seq = 0


def unique_name(size):
    """Dovecot-style maildir base name, strictly increasing within this process."""
    global _last_us, _seq
    now_us = time.time_ns() // 1000
    _last_us = max(now_us, _last_us + 1)
    _seq += 1
    secs, usecs = divmod(_last_us, 1_000_000)
    return f"{secs}.M{usecs}P{os.getpid()}Q{_seq}.{_HOST},S={size}"


class Maildir:
    def __init__(self, mail_root):
        self.mail_root = mail_root

    def ensure(self, user):
        md = os.path.join(self.mail_root, user, "Maildir")
        for d in (os.path.join(self.mail_root, user), md,
                  os.path.join(md, "tmp"), os.path.join(md, "new"), os.path.join(md, "cur")):
            if not os.path.isdir(d):
                os.makedirs(d, mode=0o700, exist_ok=True)
                if _UID is not None:
                    os.chown(d, _UID, _GID)
        return md

    def deliver(self, user, data):
        """Write data (bytes, LF line endings) atomically into user's new/."""
        md = self.ensure(user)
        name = unique_name(len(data))
        tmp = os.path.join(md, "tmp", name)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            if _UID is not None:
                os.fchown(fd, _UID, _GID)
        finally:
            os.close(fd)
        os.rename(tmp, os.path.join(md, "new", name))
        return name


def deliver_main(args):
    maildir = Maildir(os.path.join(args.dir, "mail"))
    user = user_of(args.user)
    users = Users(os.path.join(args.dir, "users"))
    if not users.known(user):
        print(f"deliver: no such user: {args.user}", file=sys.stderr)
        return 1
    files = []
    for src in args.files:
        if os.path.isdir(src):
            with os.scandir(src) as it:
                files.extend(sorted(e.path for e in it if e.is_file()))
        elif os.path.isfile(src):
            files.append(src)
        else:
            print(f"deliver: not a file or directory: {src}", file=sys.stderr)
            return 1
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        maildir.deliver(user, data.replace(b"\r\n", b"\n"))
    print(f"delivered {len(files)} message(s) to {user}'s INBOX")
    return 0


# ---------------------------------------------------------------------------
# The SMTP servers (aiosmtpd).
# ---------------------------------------------------------------------------


def serve_main(args):
    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

    users = Users(os.path.join(args.dir, "users"))
    maildir = Maildir(os.path.join(args.dir, "mail"))

    class Handler:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            try:
                if users.known(user_of(address)):
                    envelope.rcpt_tos.append(address)
                    return "250 2.1.5 OK"
                return "550 5.1.1 no such user"
            except Exception:
                log.exception("RCPT %r", address)
                return "451 4.3.0 temporary failure"

        async def handle_DATA(self, server, session, envelope):
            try:
                body = envelope.original_content or envelope.content or b""
                if isinstance(body, str):
                    body = body.encode("utf-8", "surrogateescape")
                body = body.replace(b"\r\n", b"\n")
                peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
                helo = (session.host_name or "unknown").replace("\n", " ").replace("\r", " ")
                proto = "ESMTP" + ("S" if session.ssl else "") + ("A" if session.authenticated else "")
                sender = (envelope.mail_from or "").strip("<>").replace("\n", " ").replace("\r", " ")
                now = email.utils.formatdate(localtime=True)
                names = []
                for rcpt in envelope.rcpt_tos:
                    safe_rcpt = rcpt.replace("\n", " ").replace("\r", " ")
                    head = (f"Return-Path: <{sender}>\n"
                            f"Received: from {helo} ([{peer}])\n"
                            f"\tby localhost (braid test SMTP) with {proto}\n"
                            f"\tfor <{safe_rcpt}>; {now}\n").encode("utf-8", "replace")
                    names.append(maildir.deliver(user_of(rcpt), head + body))
                log.info("delivered from=<%s> to=%s via %s (%d bytes)",
                         sender, envelope.rcpt_tos, proto, len(body))
                return f"250 2.0.0 OK delivered {len(names)}"
            except Exception:
                log.exception("DATA delivery failed")
                return "451 4.3.0 local delivery failed"

    def authenticator(server, session, envelope, mechanism, auth_data):
        try:
            if isinstance(auth_data, LoginPassword):
                login = auth_data.login.decode("utf-8", "replace")
                password = auth_data.password.decode("utf-8", "replace")
                if users.check(user_of(login), password):
                    log.info("AUTH %s ok for %s", mechanism, login)
                    return AuthResult(success=True, handled=False, auth_data=user_of(login))
                log.info("AUTH %s failed for %s", mechanism, login)
        except Exception:
            log.exception("AUTH")
        return AuthResult(success=False, handled=False)

    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(os.path.join(args.dir, "cert.pem"), os.path.join(args.dir, "key.pem"))
    handler = Handler()

    async def main():
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(
            lambda loop, ctx: log.error("asyncio: %s", ctx.get("message"), exc_info=ctx.get("exception")))
        common = dict(hostname="localhost", ident="braid test SMTP (aiosmtpd)",
                      enable_SMTPUTF8=True, decode_data=False, data_size_limit=64 * 1024 * 1024)
        smtp = await loop.create_server(
            lambda: SMTP(handler, auth_required=False, **common),
            host=args.host, port=args.smtp_port)
        submission = await loop.create_server(
            lambda: SMTP(handler, tls_context=tls, require_starttls=True, auth_required=True,
                         auth_require_tls=True, authenticator=authenticator, **common),
            host=args.host, port=args.submission_port)
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("listening: smtp %s:%d, submission %s:%d (STARTTLS, AUTH required)",
                 args.host, args.smtp_port, args.host, args.submission_port)
        await stop.wait()
        smtp.close()
        submission.close()
        log.info("stopped")

    asyncio.run(main())
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--dir", required=True)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--smtp-port", type=int, default=10025)
    s.add_argument("--submission-port", type=int, default=10587)
    d = sub.add_parser("deliver")
    d.add_argument("--dir", required=True)
    d.add_argument("user")
    d.add_argument("files", nargs="+")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    if args.cmd == "serve":
        return serve_main(args)
    return deliver_main(args)


if __name__ == "__main__":
    sys.exit(main())
