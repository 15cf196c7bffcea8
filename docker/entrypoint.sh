#!/bin/sh
# Container entry point: apply pending migrations, then serve.
#
#   docker run IMAGE                 -> ephemera migrate up && exec ephemera serve
#   docker run IMAGE serve [ARGS]    -> the same, ARGS passed to serve
#   docker run IMAGE migrate status  -> anything else runs as `ephemera ARGS`
#                                       (other subcommands, --help, --version)
#
# `ephemera serve` applies pending migrations itself too, under a PostgreSQL
# advisory lock, so replicas starting together migrate once and this first
# step is redundant for correctness. It is kept so that a failing migration
# fails the container on its own, with the migration's error as the last log
# line and a non-zero exit, before anything listens; the second check inside
# serve then finds nothing pending. Kubernetes and ECS run `ephemera migrate up`
# as a separate one-off job before rolling out, and start `ephemera serve`
# directly.
set -eu

case "${1:-serve}" in
    serve) [ $# -eq 0 ] || shift ;;
    *) exec ephemera "$@" ;;
esac

if ! ephemera migrate up; then
    echo "error: database migration failed; not starting the server" >&2
    exit 1
fi

exec ephemera serve "$@"
