"""hosts.applications.compose: the gate a Compose file passes before the portal saves or deploys it.

Pure: no database, no Docker. Each refusal is asserted with its key path and its line.
"""

from __future__ import annotations

from textwrap import dedent, indent

import pytest

from hosts.applications.compose import (
    ComposeInvalid,
    Problem,
    Variable,
    check,
    deploy_order,
    render,
    variables,
)

THREE_TIER = dedent(
    """\
    name: shop
    version: "3.9"
    x-logging: &logging
      logging:
        driver: json-file
        options:
          max-size: 10m
    services:
      web:
        <<: *logging
        image: nginx:1.27
        restart: unless-stopped
        ports:
          - 8080:80
        depends_on:
          - app
        x-portal:
          tags: [edge]
      app:
        <<: *logging
        image: registry.example.com/shop/app:${APP_TAG:-latest}
        environment:
          DATABASE_URL: postgres://shop:${DB_PASSWORD:?set the database password}@db/shop
          GREETING: "costs $$5"
        depends_on:
          db:
            condition: service_healthy
        deploy:
          replicas: 2
          resources:
            limits:
              cpus: "0.5"
              memory: 512M
            reservations:
              memory: 256M
        x-portal:
          max_per_host: 1
          spread: true
      db:
        image: postgres:16
        volumes:
          - dbdata:/var/lib/postgresql/data
        healthcheck:
          test: ["CMD", "pg_isready", "-U", "shop"]
          interval: 10s
          retries: 5
        x-portal:
          host: photon-db-01
    volumes:
      dbdata: {}
    """
)

SERVICE = "services:\n  web:\n    image: nginx:1.27\n"  # a line 4 follows: the key under test


def service(text: str) -> str:
    """SERVICE followed by ``text``'s lines as more of the web service's keys (line 4 on)."""
    return SERVICE + indent(dedent(text), "    ")


def problems(source: str) -> list[Problem]:
    with pytest.raises(ComposeInvalid) as caught:
        check(source)
    assert str(caught.value) == "\n".join(p.message for p in caught.value.problems)
    return caught.value.problems


def only(source: str) -> Problem:
    found = problems(source)
    assert len(found) == 1, found
    return found[0]


def at(found: list[Problem], path: str) -> Problem:
    matching = [p for p in found if p.path == path]
    assert len(matching) == 1, (path, found)
    return matching[0]


# --- A file the portal takes ------------------------------------------------------------------


def test_a_three_tier_application_passes_and_starts_its_database_first() -> None:
    model = check(THREE_TIER)

    web, app, db = (model["services"][name] for name in ("web", "app", "db"))
    assert web["ports"] == ["8080:80"]  # text, as Compose reads it (YAML 1.1 made it 484880)
    assert web["logging"]["options"] == {"max-size": "10m"}  # from the merge key
    assert app["image"] == "registry.example.com/shop/app:${APP_TAG:-latest}"  # left as written
    assert app["deploy"]["replicas"] == 2
    assert app["x-portal"] == {"max_per_host": 1, "spread": True}
    assert db["x-portal"] == {"host": "photon-db-01"}
    assert model["volumes"] == {"dbdata": {}}
    assert deploy_order(model) == ["db", "app", "web"]


def test_render_fills_in_defaults_and_values_and_checks_again() -> None:
    model = render(THREE_TIER, {"DB_PASSWORD": "s3cret"})

    app = model["services"]["app"]
    assert app["image"] == "registry.example.com/shop/app:latest"
    assert app["environment"] == {
        "DATABASE_URL": "postgres://shop:s3cret@db/shop",
        "GREETING": "costs $5",
    }
    assert render(THREE_TIER, {"DB_PASSWORD": "x", "APP_TAG": "1.4"})["services"]["app"]["image"].endswith(
        ":1.4"
    )
    assert deploy_order(model) == ["db", "app", "web"]


def test_render_refuses_a_missing_required_variable_with_its_error_text_and_line() -> None:
    with pytest.raises(ComposeInvalid) as caught:
        render(THREE_TIER, {"APP_TAG": "1.4"})
    (problem,) = caught.value.problems
    assert problem.path == "services.app.environment.DATABASE_URL"
    assert problem.line == 23
    assert "DB_PASSWORD is required: set the database password." in problem.message
    # ${NAME:?} also refuses an empty value; ${NAME?} only an unset one.
    with pytest.raises(ComposeInvalid, match="DB_PASSWORD is required"):
        render(THREE_TIER, {"DB_PASSWORD": ""})
    source = SERVICE + "    environment:\n      A: ${A?say A}\n"
    assert render(source, {"A": ""})["services"]["web"]["environment"] == {"A": ""}
    with pytest.raises(
        ComposeInvalid, match=r"services.web.environment.A \(line 5\): the variable A is required: say A."
    ):
        render(source, {})


def test_render_validates_the_filled_in_values() -> None:
    source = SERVICE + "    ports:\n      - ${PORT}:80\n    privileged: ${PRIVILEGED:-false}\n"
    check(source)  # as saved: the values are not known yet

    assert render(source, {"PORT": "8080"})["services"]["web"]["ports"] == ["8080:80"]
    assert render(source, {"PORT": "8080"})["services"]["web"]["privileged"] is False  # read as Compose does
    with pytest.raises(ComposeInvalid) as caught:
        render(source, {"PORT": "http", "PRIVILEGED": "true"})
    found = caught.value.problems
    assert at(found, "services.web.ports.0").line == 5
    assert "'http:80' is not a port mapping" in at(found, "services.web.ports.0").message
    assert at(found, "services.web.privileged").line == 6
    assert "gives the container root on the host" in at(found, "services.web.privileged").message


def test_render_reads_typed_values_from_text() -> None:
    source = SERVICE + "    deploy:\n      replicas: ${REPLICAS:-1}\n"
    assert render(source, {"REPLICAS": "3"})["services"]["web"]["deploy"]["replicas"] == 3
    with pytest.raises(ComposeInvalid) as caught:
        render(source, {"REPLICAS": "three"})
    (problem,) = caught.value.problems
    assert (problem.path, problem.line) == ("services.web.deploy.replicas", 5)
    assert "must be a whole number, not 'three'" in problem.message


# --- Keys the portal refuses --------------------------------------------------------------------

REFUSED_SERVICE_KEYS = [
    ("build: .", "build", "push them to a registry first"),
    ("env_file: .env", "env_file", "no files beside the template"),
    ("label_file: labels", "label_file", "no files beside the template"),
    ("extends: {service: base}", "extends", "deploys one file"),
    ("secrets: [db_password]", "secrets", "no Compose secrets"),
    ("configs: [nginx_conf]", "configs", "no files beside the template"),
    ("develop: {watch: []}", "develop", "docker compose watch"),
    ("models: [llm]", "models", "Model Runner"),
    ("provider: {type: awesomecloud}", "provider", "provider services"),
    ("scale: 3", "scale", "use deploy.replicas"),
    ("links: [db]", "links", "legacy"),
    ("external_links: [redis_1]", "external_links", "outside the application"),
    ("volumes_from: [other]", "volumes_from", "named volume"),
    # Root on the host.
    ("privileged: true", "privileged", "gives the container root on the host"),
    ('privileged: "yes"', "privileged", "gives the container root on the host"),
    ("cap_add: [NET_ADMIN]", "cap_add", "gives the container root on the host"),
    ("devices: ['/dev/sda:/dev/sda']", "devices", "gives the container root on the host"),
    ("device_cgroup_rules: ['c 1:3 mr']", "device_cgroup_rules", "gives the container root on the host"),
    ("security_opt: ['seccomp:unconfined']", "security_opt", "gives the container root on the host"),
    ("pid: host", "pid", "gives the container root on the host"),
    ("ipc: host", "ipc", "gives the container root on the host"),
    ("uts: host", "uts", "gives the container root on the host"),
    ("cgroup: host", "cgroup", "gives the container root on the host"),
    ("userns_mode: host", "userns_mode", "gives the container root on the host"),
    ("cgroup_parent: m-executor", "cgroup_parent", "gives the container root on the host"),
    ("sysctls: {net.core.somaxconn: 1024}", "sysctls", "gives the container root on the host"),
    ("runtime: runc", "runtime", "gives the container root on the host"),
    ("use_api_socket: true", "use_api_socket", "gives the container root on the host"),
    ("pid: 'container:other'", "pid", "gives the container root on the host"),
    ("network_mode: bridge", "network_mode", "attaches networks itself"),
    ("network_mode: host", "network_mode", "attaches networks itself"),
    ("pull_policy: build", "pull_policy", "push them to a registry first"),
]


@pytest.mark.parametrize(
    ("line", "key", "reason"), REFUSED_SERVICE_KEYS, ids=[k for _, k, _ in REFUSED_SERVICE_KEYS]
)
def test_a_refused_service_key_is_named_with_its_line(line: str, key: str, reason: str) -> None:
    problem = only(SERVICE + f"    {line}\n")

    assert problem.path == f"services.web.{key}"
    assert problem.line == 4
    assert problem.message.startswith(f"services.web.{key} (line 4): ")
    assert reason in problem.message


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("include:\n  - other.yaml\n", "include", "deploys one file"),
        ("secrets:\n  db_password:\n    file: ./pw.txt\n", "secrets", "no Compose secrets"),
        ("configs:\n  nginx:\n    file: ./nginx.conf\n", "configs", "no files beside the template"),
        ("models:\n  llm:\n    model: ai/smollm2\n", "models", "Model Runner"),
    ],
)
def test_a_refused_top_level_key_is_named_with_its_line(text: str, key: str, reason: str) -> None:
    problem = only(SERVICE + text)

    assert (problem.path, problem.line) == (key, 4)
    assert reason in problem.message


def test_the_deploy_keys_swarm_alone_honours_are_refused() -> None:
    found = problems(
        service(
            """\
                deploy:
                  mode: global
                  replicas: 2
                  placement:
                    constraints: [node.role == manager]
                  restart_policy:
                    condition: on-failure
                  labels: {team: shop}
                  resources:
                    limits:
                      cpus: "1"
                      memory: 1G
                      pids: 100
                    reservations:
                      devices:
                        - capabilities: [gpu]
            """
        )
    )

    assert [(p.path, p.line) for p in found] == [
        ("services.web.deploy.mode", 5),
        ("services.web.deploy.placement", 7),
        ("services.web.deploy.restart_policy", 9),
        ("services.web.deploy.resources.limits.pids", 16),
        ("services.web.deploy.resources.reservations.devices", 18),
    ]
    assert "swarm-only" in found[0].message and "swarm-only" in found[2].message
    assert "only cpus and memory" in found[3].message


def test_container_name_is_refused_only_with_more_than_one_replica() -> None:
    named = SERVICE + "    container_name: web\n"
    assert check(named)["services"]["web"]["container_name"] == "web"
    assert check(named + "    deploy:\n      replicas: 1\n")

    problem = only(named + "    deploy:\n      replicas: 3\n")
    assert (problem.path, problem.line) == ("services.web.container_name", 4)
    assert "deploy.replicas asks for 3" in problem.message


def test_privileged_false_and_no_new_privileges_are_allowed() -> None:
    model = check(SERVICE + "    privileged: false\n    security_opt: ['no-new-privileges:true']\n")
    assert model["services"]["web"]["privileged"] is False
    # Any other option with it is refused, the whole key.
    problem = only(SERVICE + "    security_opt: ['no-new-privileges:true', 'apparmor:unconfined']\n")
    assert (problem.path, problem.line) == ("services.web.security_opt", 4)


def test_pid_and_ipc_may_share_a_service_of_the_file() -> None:
    check(SERVICE + "    pid: service:db\n    ipc: shareable\n  db:\n    image: postgres:16\n")


def test_a_privileged_hook_is_refused() -> None:
    hook, privileged = problems(
        service("post_start:\n  - command: chown -R app /data\n    privileged: true\n")
    )
    assert (privileged.path, privileged.line) == ("services.web.post_start.0.privileged", 6)
    assert "gives the container root on the host" in privileged.message
    # Hooks are not run by the deployer at all, privileged or not: said, not dropped.
    assert (hook.path, hook.line) == ("services.web.post_start", 4)
    assert "not one the portal deploys yet" in hook.message


def test_a_key_compose_knows_but_the_portal_does_not_deploy_is_refused_not_dropped() -> None:
    problem = only(service("ulimits: {nofile: 1024}\n"))
    assert (problem.path, problem.line) == ("services.web.ulimits", 4)
    assert problem.message == "services.web.ulimits (line 4): is not one the portal deploys yet; remove it."


def test_the_hosts_network_is_refused_and_networks_must_be_declared() -> None:
    found = problems(
        service("networks: [front, back, default]\n")
        + "networks:\n  front: {}\n  hostnet:\n    external: true\n    name: host\n"
    )
    assert [(p.path, p.line) for p in found] == [("services.web.networks.1", 4), ("networks.hostnet", 7)]
    assert "'back' is not declared under networks" in found[0].message
    assert "the host's network" in found[1].message


# --- Ports ------------------------------------------------------------------------------------


def test_ports_in_every_form_compose_takes() -> None:
    ports = [
        "8080:80",
        "127.0.0.1:8080:80",
        "8000-8010:8000-8010/udp",
        "[::1]:8443:443",
        "0.0.0.0::53/udp",
        "9090",
        9091,
        {"target": 80, "published": "8081", "protocol": "tcp", "host_ip": "10.0.0.1"},
    ]
    model = check(SERVICE + f"    ports: {ports!r}\n".replace("'", '"'))
    assert model["services"]["web"]["ports"] == ports


def test_a_port_that_is_no_port_is_a_problem() -> None:
    found = problems(service("ports:\n  - 70000:80\n  - 80/ftp\n  - target: 0\n  - x.y:80:80\n  - 80:http\n"))
    assert [(p.path, p.line) for p in found] == [
        ("services.web.ports.0", 5),
        ("services.web.ports.1", 6),
        ("services.web.ports.2.target", 7),
        ("services.web.ports.3", 8),
        ("services.web.ports.4", 9),
    ]
    assert "'70000:80' is not a port mapping" in found[0].message
    assert "'ftp' is not a protocol" in found[1].message
    assert "'x.y' is not an IP address" in found[3].message


# --- Volumes ----------------------------------------------------------------------------------


def test_bind_mounts_are_refused_in_short_and_long_syntax() -> None:
    found = problems(
        service(
            """\
                volumes:
                  - /etc:/host-etc:ro
                  - ./site:/usr/share/nginx/html
                  - ~/.ssh:/root/.ssh
                  - ${HOME}:/home
                  - type: bind
                    source: /var/run/docker.sock
                    target: /var/run/docker.sock
                  - type: npipe
                    source: \\\\.\\pipe\\docker_engine
                    target: \\\\.\\pipe\\docker_engine
                  - type: volume
                    source: /srv/data
                    target: /data
            """
        )
    )

    assert [(p.path, p.line) for p in found] == [
        ("services.web.volumes.0", 5),
        ("services.web.volumes.1", 6),
        ("services.web.volumes.2", 7),
        ("services.web.volumes.3", 8),
        ("services.web.volumes.4.type", 9),
        ("services.web.volumes.5.type", 12),
        ("services.web.volumes.6.source", 16),
    ]
    assert all("gives the container root on the host" in p.message for p in found)
    assert "mounts /etc from the host" in found[0].message


def test_named_anonymous_and_tmpfs_volumes_are_allowed() -> None:
    model = check(
        SERVICE
        + dedent(
            """\
                volumes:
                  - data:/data
                  - /cache
                  - type: volume
                    source: data
                    target: /more
                    read_only: "true"
                  - type: tmpfs
                    target: /tmp
            volumes:
              data:
                driver: local
            """
        )
    )
    assert model["services"]["web"]["volumes"][2]["read_only"] is True


def test_a_volume_not_declared_is_a_problem() -> None:
    problem = only(SERVICE + "    volumes:\n      - data:/data\n")
    assert (problem.path, problem.line) == ("services.web.volumes.0", 5)
    assert "'data', not declared under volumes" in problem.message


def test_a_local_volume_that_binds_a_host_path_is_refused() -> None:
    found = problems(
        SERVICE
        + dedent(
            """\
            volumes:
              disguised:
                driver: local
                driver_opts:
                  type: none
                  o: bind
                  device: /etc
              disk:
                driver_opts:
                  type: ext4
                  device: /dev/sdb1
              share:
                driver_opts:
                  type: cifs
                  o: addr=files.example.com,username=shop
                  device: //files.example.com/shop
            """
        )
    )
    assert [(p.path, p.line) for p in found] == [
        ("volumes.disguised.driver_opts", 7),
        ("volumes.disk.driver_opts", 12),
    ]
    assert "gives the container root on the host" in found[0].message


# --- Schema and YAML ----------------------------------------------------------------------------


def test_schema_errors_name_the_key_and_the_line() -> None:
    found = problems(
        dedent(
            """\
            services:
              web:
                image: nginx:1.27
                ports: {a: b}
                restart: 5
                imgae: nginx
                depends_on:
                  db: {restart: true}
              db:
                image: postgres:16
              "bad name":
                image: busybox
            """
        )
    )

    ports = at(found, "services.web.ports")
    assert ports.line == 4
    assert ports.message == "services.web.ports (line 4): must be a list, not a mapping."
    assert (
        at(found, "services.web.restart").message
        == "services.web.restart (line 5): must be text, not a number (5)."
    )
    assert at(found, "services.web.imgae").line == 6
    assert "not a key Compose knows here" in at(found, "services.web.imgae").message
    assert at(found, "services.web.depends_on.db").line == 8
    assert "needs the key condition" in at(found, "services.web.depends_on.db").message
    assert at(found, "services.bad name").line == 11
    assert "not a valid name" in at(found, "services.bad name").message
    assert len(found) == 5


def test_a_value_error_inside_a_list_points_at_the_value() -> None:
    problem = only(SERVICE + "    depends_on:\n      - db\n      - 5\n  db:\n    image: postgres\n")
    assert (problem.path, problem.line) == ("services.web.depends_on.1", 6)
    assert "must be text, not a number (5)" in problem.message


def test_every_problem_is_reported_at_once_in_the_files_order() -> None:
    found = problems(
        dedent(
            """\
            services:
              web:
                build: .
                privileged: true
                restart: 5
                volumes:
                  - /:/host
              worker:
                command: ["run"]
            secrets:
              token:
                file: token.txt
            """
        )
    )

    assert [(p.path, p.line) for p in found] == [
        ("services.web.image", 2),
        ("services.web.build", 3),
        ("services.web.privileged", 4),
        ("services.web.restart", 5),
        ("services.web.volumes.0", 7),
        ("services.worker.image", 8),
        ("secrets", 10),
    ]
    assert "the portal deploys images" in found[0].message


def test_a_duplicate_key_is_reported_with_its_line() -> None:
    found = problems(SERVICE + "    restart: always\n    ports: ['80:80']\n    image: httpd:2\n")

    problem = at(found, "services.web.image")
    assert problem.line == 6
    assert problem.message == (
        "services.web.image (line 6): appears twice in this mapping (first on line 3); remove one."
    )
    assert len(found) == 1
    # A duplicate service, too: PyYAML would have kept the second one silently.
    assert only(SERVICE + "  web:\n    image: httpd\n").line == 4


def test_a_yaml_syntax_error_gives_its_line() -> None:
    problem = only(SERVICE + "    ports:\n      - 80:80\n     restart: always\n")
    assert problem.path == ""
    assert problem.line == 6
    assert problem.message.startswith("line 6: the YAML is not valid: ")

    unclosed = only('services:\n  web:\n    image: "nginx\n')
    assert unclosed.line == 4 and "the YAML is not valid" in unclosed.message


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("", "The file is empty."),
        ("- web\n- db\n", "The file must be a mapping (services: ...), not a list."),
        ("name: shop\n", "services: is missing: an application needs at least one service."),
        ("services: {}\n", "services (line 1): lists no service: an application needs at least one."),
        (
            "services:\n  web:\n    image: ''\n",
            "services.web.image (line 3): is empty: name the image to deploy.",
        ),
        ("services: {}\n---\nservices: {}\n", "line 2: the YAML is not valid:"),
    ],
)
def test_a_file_that_is_no_application(source: str, message: str) -> None:
    assert only(source).message.startswith(message)


def test_yaml_is_read_as_compose_reads_it() -> None:
    model = check(
        SERVICE
        + "    environment:\n      DEBUG: yes\n      MODE: 0755\n      WHEN: 2024-01-01\n      80: x\n"
    )
    assert model["services"]["web"]["environment"] == {
        "DEBUG": "yes",
        "MODE": 755,
        "WHEN": "2024-01-01",
        "80": "x",
    }


def test_anchors_and_merge_keys_work_and_point_at_the_anchors_lines() -> None:
    source = dedent(
        """\
        x-base: &base
          image: nginx:1.27
          restart: always
          privileged: true
        services:
          web:
            <<: *base
            restart: unless-stopped
          admin:
            <<: *base
            privileged: false
        """
    )
    problem = only(source)
    assert (problem.path, problem.line) == ("services.web.privileged", 4)  # where the anchor says it

    fixed = check(source.replace("privileged: true", "privileged: false"))
    assert fixed["services"]["web"] == {
        "image": "nginx:1.27",
        "restart": "unless-stopped",
        "privileged": False,
    }
    assert fixed["services"]["admin"]["restart"] == "always"


def test_a_duplicate_key_in_an_anchor_is_reported_once() -> None:
    problem = only("x-base: &base\n  image: nginx\n  image: httpd\nservices:\n  web: *base\n  db: *base\n")
    assert (problem.path, problem.line) == ("x-base.image", 3)


def test_an_anchor_bomb_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    problem = only("\n".join(lines) + "\nservices: {web: {image: nginx}}\n")
    assert "expands to more than" in problem.message


def test_extension_keys_pass_anywhere_and_version_is_ignored() -> None:
    model = check(
        'version: "3.8"\nx-anything: {a: 1}\n'
        + SERVICE
        + "    x-note: hello\n    deploy:\n      x-cost: 3\n      resources:\n        x-plan: gold\n"
    )
    assert model["x-anything"] == {"a": 1}


# --- x-portal ---------------------------------------------------------------------------------


def test_x_portal_rules_are_validated() -> None:
    found = problems(
        service(
            """\
                x-portal:
                  host: ""
                  tags: edge
                  max_per_host: 0
                  spread: sometimes
                  zone: eu
                  x-note: fine
            """
        )
    )
    assert [(p.path, p.line) for p in found] == [
        ("services.web.x-portal.host", 5),
        ("services.web.x-portal.tags", 6),
        ("services.web.x-portal.max_per_host", 7),
        ("services.web.x-portal.spread", 8),
        ("services.web.x-portal.zone", 9),
    ]
    assert "must be true or false, not 'sometimes'" in found[3].message
    assert "not an x-portal key" in found[4].message
    assert "must be a mapping" in only(SERVICE + "    x-portal: photon-1\n").message


def test_x_portal_pinned_to_one_host_cannot_spread_replicas() -> None:
    problem = only(SERVICE + "    deploy: {replicas: 2}\n    x-portal: {host: photon-1, spread: true}\n")
    assert (problem.path, problem.line) == ("services.web.x-portal.spread", 5)
    check(SERVICE + "    deploy: {replicas: 2}\n    x-portal: {host: photon-1, spread: false}\n")


# --- Variables --------------------------------------------------------------------------------


def test_variables_in_every_form_in_order_of_first_appearance() -> None:
    source = dedent(
        """\
        services:
          web:
            image: ${REGISTRY:-docker.io}/nginx:${TAG-1.27}
            command: echo $$HOME $GREETING costs 5$ and $$$$
            environment:
              TOKEN: ${TOKEN:?set a token}
              SECRET: ${SECRET?}
              PLAIN: ${PLAIN}
              AGAIN: ${TAG:-other} $REGISTRY
              NESTED: ${OUTER:-${INNER:-x}}
              ALT: ${FLAG:+on}
        """
    )
    assert variables(source) == [
        Variable("REGISTRY", "docker.io", False, ""),
        Variable("TAG", "1.27", False, ""),
        Variable("GREETING", None, False, ""),
        Variable("TOKEN", None, True, "set a token"),
        Variable("SECRET", None, True, ""),
        Variable("PLAIN", None, False, ""),
        Variable("OUTER", "${INNER:-x}", False, ""),
        Variable("INNER", "x", False, ""),
        Variable("FLAG", None, False, ""),
    ]
    model = render(source, {"TOKEN": "t", "SECRET": "", "GREETING": "hi"})
    web = model["services"]["web"]
    assert web["image"] == "docker.io/nginx:1.27"
    assert web["command"] == "echo $HOME hi costs 5$ and $$"
    assert web["environment"] == {
        "TOKEN": "t",
        "SECRET": "",
        "PLAIN": "",
        "AGAIN": "other ",
        "NESTED": "x",
        "ALT": "",
    }
    assert (
        render(source, {"TOKEN": "t", "SECRET": "", "FLAG": "1", "INNER": "y"})["services"]["web"][
            "environment"
        ]["NESTED"]
        == "y"
    )


def test_a_variable_used_twice_is_required_if_any_use_requires_it() -> None:
    source = SERVICE + "    environment:\n      A: ${PW}\n      B: ${PW:?the password}\n"
    assert variables(source) == [Variable("PW", None, True, "the password")]


def test_no_variables_and_a_broken_template() -> None:
    assert (
        variables(
            THREE_TIER.replace("${APP_TAG:-latest}", "1").replace(
                "${DB_PASSWORD:?set the database password}", "x"
            )
        )
        == []
    )
    problem = only(SERVICE + "    command: echo ${not valid}\n")
    assert (problem.path, problem.line) == ("services.web.command", 4)
    assert "'${not valid}' is not a ${VARIABLE}; write $$ for a dollar sign." in problem.message
    with pytest.raises(ComposeInvalid, match="bad variable"):
        variables(SERVICE + "    command: echo ${UNCLOSED\n")


# --- Deploy order -------------------------------------------------------------------------------


def test_deploy_order_is_stable_with_peers_by_name() -> None:
    model = {
        "services": {
            "web": {"image": "a", "depends_on": ["api", "auth"]},
            "worker": {"image": "a", "depends_on": {"queue": {"condition": "service_started"}}},
            "queue": {"image": "a"},
            "auth": {"image": "a", "depends_on": ["db"]},
            "api": {"image": "a", "depends_on": ["db"]},
            "db": {"image": "a"},
        }
    }
    assert deploy_order(model) == ["db", "queue", "api", "auth", "worker", "web"]


def test_deploy_order_names_a_cycle() -> None:
    model = {
        "services": {
            "web": {"image": "a", "depends_on": ["app"]},
            "app": {"image": "a", "depends_on": {"web": {"condition": "service_started"}}},
            "db": {"image": "a"},
        }
    }
    with pytest.raises(ComposeInvalid) as caught:
        deploy_order(model)
    (problem,) = caught.value.problems
    assert problem.path == "services.web.depends_on"
    assert "a cycle: web -> app -> web" in problem.message


def test_deploy_order_refuses_a_service_that_is_not_there() -> None:
    with pytest.raises(ComposeInvalid, match="'cache' is not a service here") as caught:
        deploy_order({"services": {"web": {"image": "a", "depends_on": ["cache"]}}})
    assert caught.value.problems[0].path == "services.web.depends_on.0"
    # Unless the dependency is optional (required: false), as Compose has it.
    optional = {"cache": {"condition": "service_started", "required": False}}
    assert deploy_order({"services": {"web": {"image": "a", "depends_on": optional}}}) == ["web"]


def test_check_finds_a_cycle_and_an_unknown_dependency_with_their_lines() -> None:
    found = problems(
        dedent(
            """\
            services:
              web:
                image: nginx
                depends_on: [app, cache]
              app:
                image: app
                depends_on:
                  web:
                    condition: service_started
            """
        )
    )
    assert [(p.path, p.line) for p in found] == [
        ("services.web.depends_on", 4),
        ("services.web.depends_on.1", 4),
    ]
    assert "web -> app -> web" in found[0].message
