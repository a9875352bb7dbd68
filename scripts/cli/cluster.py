"""``gridpatrol cluster up|down|status|env``: the local three-node cluster (Patroni + etcd, :mod:`gis.db.cluster`).

``up`` starts it (initialising it the first time), creates the service's database on the primary and prints the
two URLs the service takes; ``eval "$(gridpatrol cluster env)"`` sets them in a shell, so every other command
(``demo``, ``serve --workers 2``, ``migrate``, ``db backup``) runs against the cluster.
"""

from __future__ import annotations

import argparse
import shlex

from api.settings import Settings
from gis.db.cluster import NODES, LocalCluster
from scripts.cli.base import Subparsers


def _cluster(settings: Settings) -> LocalCluster:
    return LocalCluster.for_data_dir(settings.data_dir)


def _show(cluster: LocalCluster, settings: Settings) -> None:
    members = cluster.members()
    if not members:
        print("no node answers (the cluster is down): `gridpatrol cluster up`")
        return
    width = max(len(m.role) for m in members)
    for m in members:
        lag = "" if m.lag_bytes is None else f"  lag {m.lag_bytes:,} bytes"
        print(f"  {m.name}  {m.role:<{width}}  {m.state:<9}  {m.host}:{m.port}{lag}")
    down = sorted(set(NODES) - {m.name for m in members})
    if down:
        print(f"  not in the cluster: {', '.join(down)}")
    write, read = cluster.urls(settings.db_name)
    print(f"writes (DATABASE_URL):      {_hide(write)}\nreads (GRIDPATROL_READ_URL): {_hide(read)}")
    print('the service takes both with: eval "$(gridpatrol cluster env)"')


def _hide(url: str) -> str:
    head, _, rest = url.partition("@")
    user = head.rsplit(":", 1)[0]
    return f"{user}:***@{rest}"


def cmd_cluster(args: argparse.Namespace, settings: Settings) -> int:
    cluster = _cluster(settings)
    if args.action == "up":
        cluster.up(say=lambda what: print(f"starting {what}", flush=True))
        created = cluster.create_database(settings.db_name)
        print(f"up: {cluster.root}" + (f" (database {settings.db_name} created)" if created else ""))
        _show(cluster, settings)
    elif args.action == "down":
        cluster.down()
        print("down")
    elif args.action == "env":
        write, read = cluster.urls(settings.db_name)
        print(f"export DATABASE_URL={shlex.quote(write)}\nexport GRIDPATROL_READ_URL={shlex.quote(read)}")
    else:
        if not cluster.state_file.is_file():
            print(f"no cluster yet in {cluster.root}: `gridpatrol cluster up`")
            return 1
        _show(cluster, settings)
        return 0 if cluster.leader() else 1
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("cluster", help="a local three-node PostgreSQL cluster with failover (Patroni + etcd)",
                       description="up: start etcd and three Patroni nodes (one primary, a synchronous standby and "
                       "a replica) as the server's unprivileged user, and the service's database; down: stop them; "
                       "status: the members, their lag and the service's URLs; env: the URLs as shell exports.")
    p.add_argument("action", choices=("up", "down", "status", "env"))
    p.set_defaults(func=cmd_cluster)
