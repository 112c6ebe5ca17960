"""Password hashing for the tests: Django's own PBKDF2 at one iteration.

The default (over a million iterations) costs about a quarter of a second per user made, and
most tests make five (``people``): minutes per run, spent on hashing nobody tests. The
algorithm name stays ``pbkdf2_sha256`` and the iteration count is in each hash, so a daphne or
lab portal started as a subprocess with the production settings still verifies these
passwords (and upgrades the hash on sign-in, as Django does when the count is raised)."""

from __future__ import annotations

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class OneIterationPbkdf2(PBKDF2PasswordHasher):
    iterations = 1
