"""``kubectl wukong``: a VM owner's everyday verbs on Wukongs (kubectl finds ``kubectl-wukong`` on PATH).

  status NAME            the Wukong's whole state on one screen (-o json: the same as a document)
  start|stop|restart NAME  its VM, as virtctl does (the run state is the VM user's; the Wukong is not changed)
  check PATH...          the offline checker, ``wukong-webhook check``: same flags, same exit codes

Credentials as kubectl finds them: --kubeconfig, $KUBECONFIG, ~/.kube/config; --context; -n or the context's
namespace. Every failure is one line on stderr and exit 1, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Callable
from typing import Any

from kubeclient.credentials import CredentialsError, load_kubectl_client
from kubeclient.resources import VIRTUAL_MACHINE_ACTIONS, VIRTUAL_MACHINE_INSTANCES, VIRTUAL_MACHINES
from kubeclient.rest import JSON_PATCH, ApiError, Kube, NotFound, Unreachable
from wukong.api import WUKONGS
from wukong.naming import vm_name
from wukongctl import power
from wukongctl.render import render
from wukongctl.view import status_view

PROG = "kubectl wukong"
FIELD_MANAGER = "kubectl-wukong"
EXIT_OK, EXIT_ERROR = 0, 1
GLOBAL_FLAGS = ("--kubeconfig", "--context", "--namespace", "-n")


class Failed(Exception):
    """A one-line error for the user."""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if (at := _command_index(argv)) is not None and argv[at] == "check":
        return _check(argv[:at], argv[at + 1 :])
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except Failed as error:
        return _fail(str(error))
    except power.Refused as error:
        return _fail(str(error))
    except CredentialsError as error:
        return _fail(f"no usable kubeconfig: {error}")
    except Unreachable as error:
        return _fail(f"cannot reach the Kubernetes API server: {error.message}")
    except ApiError as error:
        if error.status == 403:
            return _fail(f"forbidden: {error.message}")
        if error.status == 401:
            return _fail(f"unauthorized: the credentials of the kubeconfig were refused ({error.message})")
        return _fail(f"{error.status} {error.reason}: {error.message}".strip())
    except ValueError as error:  # a name no API path can hold
        return _fail(str(error))
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # a person reads this: a line naming the failure, not a stack
        return _fail(f"unexpected {type(error).__name__}: {error}")


def _fail(message: str) -> int:
    print("error: " + " ".join(message.split()), file=sys.stderr)  # one line, whatever the message held
    return EXIT_ERROR


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=(__doc__ or "").replace("``", ""), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _connection_flags(parser, None)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    status = commands.add_parser("status", help="a Wukong's phase, disks, VM, conditions and what it waits for")
    _connection_flags(status, argparse.SUPPRESS)
    status.add_argument("name", metavar="NAME")
    status.add_argument("--output", "-o", choices=("text", "json"), default="text")
    status.set_defaults(run=_status)
    for verb, text in (
        ("start", "start the Wukong's VM (virtctl start)"),
        ("stop", "stop the Wukong's VM (virtctl stop)"),
        ("restart", "restart the Wukong's VM: a new instance from the current spec (virtctl restart)"),
    ):
        command = commands.add_parser(verb, help=text)
        _connection_flags(command, argparse.SUPPRESS)
        command.add_argument("name", metavar="NAME")
        command.set_defaults(run=_power, verb=verb)
    commands.add_parser(
        "check", help="check manifests offline, as wukong-webhook check (kubectl wukong check --help)", add_help=False
    )
    return parser


def _connection_flags(parser: argparse.ArgumentParser, default: Any) -> None:
    """Accepted before and after the command, as kubectl's own; after it, only when given (SUPPRESS)."""
    parser.add_argument("--kubeconfig", default=default, help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    parser.add_argument("--context", default=default, help="the kubeconfig context to use")
    parser.add_argument("--namespace", "-n", default=default, help="namespace (default: the context's)")


def _command_index(argv: list[str]) -> int | None:
    """Where the command is, past the connection flags given before it."""
    index = 0
    while index < len(argv):
        word = argv[index]
        if word in GLOBAL_FLAGS:
            index += 2
        elif word.startswith("-"):
            index += 1
        else:
            return index
    return None


def _check(before: list[str], after: list[str]) -> int:
    """The offline checker itself, so the rules, flags, output and exit codes are exactly its own."""
    from webhook.cli import main as webhook_main

    forwarded = list(after)
    flags = dict(zip(before[::2], before[1::2], strict=False))
    if "--kubeconfig" in flags and "--kubeconfig" not in forwarded:
        forwarded += ["--kubeconfig", flags["--kubeconfig"]]
    namespace = flags.get("--namespace") or flags.get("-n")
    if namespace and not {"--namespace", "-n"} & set(forwarded):
        forwarded += ["--namespace", namespace]
    return webhook_main(["check", *forwarded])


def _connect(args: argparse.Namespace) -> tuple[Kube, str]:
    api_client, namespace = load_kubectl_client(args.kubeconfig, args.context)
    return Kube(api_client, field_manager=FIELD_MANAGER), args.namespace or namespace


def _owned(obj: dict[str, Any] | None, uid: str | None) -> dict[str, Any] | None:
    """The object only when the Wukong controls it: a same-named VM of someone else's is not this Wukong's."""
    if obj is None:
        return None
    owners = (obj.get("metadata") or {}).get("ownerReferences") or []
    return obj if any(o.get("uid") == uid and o.get("controller") for o in owners) else None


def _get_or_none(read: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
    try:
        return read()
    except NotFound:  # none yet, or KubeVirt's API not installed
        return None


def _wukong(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    try:
        return kube.get(WUKONGS, namespace, name)
    except NotFound as error:
        if "the server could not find the requested resource" in error.message:
            raise Failed(
                "this cluster has no Wukong API (the wukongs.vm.novasphere.dev CRD is not installed)"
            ) from error
        raise Failed(f'wukong "{name}" not found in namespace "{namespace}"') from error


def _children(kube: Kube, namespace: str, wukong: dict[str, Any]) -> tuple[Any, Any, str | None]:
    """The Wukong's VM and its instance, and what could not be read: a user who may read Wukongs but not KubeVirt's
    objects still gets the Wukong's own state."""
    name = (wukong.get("status") or {}).get("vmName") or vm_name(wukong["metadata"]["name"])
    try:
        vm = _owned(_get_or_none(lambda: kube.get(VIRTUAL_MACHINES, namespace, name)), wukong["metadata"].get("uid"))
        if vm is None:
            return None, None, None
        return vm, _get_or_none(lambda: kube.get(VIRTUAL_MACHINE_INSTANCES, namespace, name)), None
    except ApiError as error:
        if error.status != 403:
            raise
        return None, None, f"forbidden: {error.message}"


def _status(args: argparse.Namespace) -> int:
    kube, namespace = _connect(args)
    wukong = _wukong(kube, namespace, args.name)
    vm, vmi, unreadable = _children(kube, namespace, wukong)
    view = status_view(wukong, vm, vmi, unreadable)
    if args.output == "json":
        print(json.dumps(view, indent=2))
        return EXIT_OK
    terminal = sys.stdout.isatty()
    colour = terminal and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
    width = shutil.get_terminal_size().columns if terminal else None
    sys.stdout.write(render(view, colour=colour, width=width))
    return EXIT_OK


def _power(args: argparse.Namespace) -> int:
    kube, namespace = _connect(args)
    wukong = _wukong(kube, namespace, args.name)
    vm, vmi, unreadable = _children(kube, namespace, wukong)
    if unreadable:
        raise Failed(unreadable)
    if vm is None:
        phase = (wukong.get("status") or {}).get("phase") or "no status yet"
        raise Failed(f"wukong {args.name} has no VirtualMachine yet (phase {phase}): nothing to {args.verb}")
    name = vm["metadata"]["name"]
    plan = power.plan(args.verb, vm, vmi, kube.serves(VIRTUAL_MACHINE_ACTIONS.group, VIRTUAL_MACHINE_ACTIONS.version))
    if plan.action:
        kube.act(VIRTUAL_MACHINE_ACTIONS, namespace, name, plan.action)
    elif plan.patch:
        kube.patch(VIRTUAL_MACHINES, namespace, name, plan.patch, content_type=JSON_PATCH)
    elif plan.delete_instance:
        try:
            kube.delete(VIRTUAL_MACHINE_INSTANCES, namespace, name, uid=plan.delete_instance)
        except NotFound as error:
            raise Failed(f"VirtualMachine {name} stopped meanwhile: nothing to restart") from error
    print(f"VM {name} of wukong {args.name} was scheduled to {args.verb} ({plan.how})")
    return EXIT_OK
