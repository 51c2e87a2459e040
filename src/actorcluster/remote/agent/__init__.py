"""The remote agent: the program that runs on each host, one per runtime.

It serves many concurrent requests (commands, function calls, file transfers, host
facts) over one byte stream, the SSH channel's stdin and stdout (or a local
subprocess's pipes for the ``localhost`` runtime). The client ships this whole package
at connect time, compiled and marshalled, together with cloudpickle's source (see
:mod:`actorcluster.remote.bootstrap`): nothing is installed on the host. On the host the
package is named ``_acagent``.

So every module here uses the Python standard library only (3.10+, Linux first, macOS
works) and imports its siblings relatively; a test checks it. :mod:`frames` is the wire
format, shared with the client. :mod:`main` is the entry point
(``python3 -m actorcluster.remote.agent`` runs it as a local process).
"""
