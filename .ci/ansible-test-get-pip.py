"""Local stand-in for ansible-test's get-pip bootstrap script (its download host is unreachable here).

Bootstraps pip with the interpreter's own ensurepip, then installs the requested pip version
with the machine's pip configuration (CA bundle, local indexes).
"""
import ensurepip
import os
import subprocess
import sys

ensurepip.bootstrap(upgrade=True)
args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
extra = []
if os.path.exists('/etc/ssl/certs/ca-certificates.crt'):
    extra += ['--cert', '/etc/ssl/certs/ca-certificates.crt']
sys.exit(subprocess.call([sys.executable, '-m', 'pip', 'install'] + extra + args))
