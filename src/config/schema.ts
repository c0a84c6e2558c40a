/**
 * The one description of every corral setting. Defaults, validation, command-line flags, the
 * commented TOML template (`corral config`) and the README's reference all come from here.
 */
export type Setting =
  | { kind: 'string'; default: string; doc: string; reload?: boolean; flag?: boolean }
  | { kind: 'int'; default: number; min?: number; max?: number; doc: string; reload?: boolean; flag?: boolean }
  | { kind: 'bool'; default: boolean; doc: string; reload?: boolean; flag?: boolean }
  | { kind: 'enum'; values: readonly string[]; default: string; doc: string; reload?: boolean; flag?: boolean }
  | { kind: 'list'; default: string[]; doc: string; reload?: boolean; flag?: boolean }
  /** A table of named tables, each following `entry` (e.g. runtime handlers by name). */
  | { kind: 'map'; entry: Section; default: Record<string, Record<string, unknown>>; doc: string; reload?: boolean }
  /** An array of tables, each following `entry` (e.g. registry mirror rules). */
  | { kind: 'tables'; entry: Section; default: Record<string, unknown>[]; doc: string; reload?: boolean }
  | { kind: 'section'; section: Section; doc: string };

export type Section = Record<string, Setting>;

const handlerEntry: Section = {
  path: { kind: 'string', default: '/usr/sbin/runc', doc: 'Path of the OCI runtime binary.' },
  root: { kind: 'string', default: '', doc: 'State directory passed to the runtime as --root (empty: <run_root>/runtimes/<handler name>).' },
  type: { kind: 'enum', values: ['oci'], default: 'oci', doc: 'Runtime type; "oci" runtimes speak the runc command line.' },
};

const mirrorEntry: Section = {
  prefix: { kind: 'string', default: '', doc: 'Registry or registry/repository prefix the rule applies to, e.g. "registry.k8s.io" or "docker.io/library".' },
  locations: { kind: 'list', default: [], doc: 'Mirror locations (host[:port][/path]) tried in order before the upstream registry.' },
  insecure: { kind: 'bool', default: false, doc: 'Talk plain HTTP to these mirrors.' },
  mirror_only: { kind: 'bool', default: false, doc: 'Never fall back to the upstream registry.' },
};

export const schema: Section = {
  socket: { kind: 'string', default: '/run/corral/corral.sock', doc: 'Unix socket the CRI gRPC server listens on (mode 0660, owner root).', flag: true },
  listen_tcp: { kind: 'string', default: '', doc: 'Also serve CRI on this TCP host:port (unauthenticated: loopback only is wise). Empty: no TCP.', flag: true },
  root: { kind: 'string', default: '/var/lib/corral', doc: 'Persistent state: images, layers, pod and container records.', flag: true },
  run_root: { kind: 'string', default: '/run/corral', doc: 'Runtime state that a reboot clears: namespaces, bundles, conmon sockets, lock file.', flag: true },
  grpc_max_message_bytes: { kind: 'int', default: 80 * 1024 * 1024, min: 4 * 1024 * 1024, doc: 'Largest gRPC message accepted or sent.' },
  shutdown_grace_seconds: { kind: 'int', default: 10, min: 0, max: 600, doc: 'On SIGTERM/SIGINT, how long in-flight calls may finish before the daemon exits. Containers keep running.' },
  log: {
    kind: 'section',
    doc: 'Daemon logging (to stderr; journald picks it up under systemd).',
    section: {
      level: { kind: 'enum', values: ['debug', 'info', 'warn', 'error'], default: 'info', doc: 'Log level; debug logs every RPC with its duration.', reload: true, flag: true },
      format: { kind: 'enum', values: ['text', 'json'], default: 'text', doc: 'Log line format.', reload: true, flag: true },
    },
  },
  runtime: {
    kind: 'section',
    doc: 'Containers and the OCI runtimes that run them.',
    section: {
      cgroup_manager: { kind: 'enum', values: ['cgroupfs', 'systemd'], default: 'cgroupfs', doc: 'Cgroup driver; must match kubelet\'s --cgroup-driver.', flag: true },
      default_handler: { kind: 'string', default: 'runc', doc: 'Runtime handler used when a pod names none.' },
      handlers: { kind: 'map', entry: handlerEntry, default: { runc: { path: '/usr/sbin/runc', root: '', type: 'oci' } }, doc: 'Runtime handlers by name (kubelet RuntimeClass handler names).' },
      conmon: { kind: 'string', default: '/usr/bin/conmon', doc: 'Path of the conmon monitor binary.', flag: true },
      pause_image: { kind: 'string', default: '', doc: 'Image for pod infra containers. Empty: the built-in pause (Debian\'s static catatonit), no pull needed.', flag: true },
      catatonit: { kind: 'string', default: '/usr/bin/catatonit', doc: 'Path of the static catatonit binary used by the built-in pause.' },
      log_size_max: { kind: 'int', default: -1, min: -1, doc: 'Largest container log file in bytes before conmon truncates it; -1 is unlimited (kubelet rotates logs).' },
      restrict_oom_score_adj: { kind: 'enum', values: ['auto', 'true', 'false'], default: 'auto', doc: 'Clamp oom_score_adj to what the daemon may set; auto: on when the daemon lacks CAP_SYS_RESOURCE.' },
      default_ulimits: { kind: 'list', default: [], doc: 'Reserved; ulimits as name=soft:hard applied to every container.' },
    },
  },
  cni: {
    kind: 'section',
    doc: 'Pod networking through CNI plugins.',
    section: {
      conf_dirs: { kind: 'list', default: ['/etc/cni/net.d'], doc: 'Directories searched for the lexically first valid .conf/.conflist; watched for changes.', reload: true, flag: true },
      plugin_dirs: { kind: 'list', default: ['/usr/lib/cni', '/opt/cni/bin'], doc: 'Directories searched for CNI plugin binaries.', reload: true, flag: true },
      timeout_seconds: { kind: 'int', default: 60, min: 1, max: 3600, doc: 'Deadline for one CNI plugin invocation.', reload: true },
    },
  },
  image: {
    kind: 'section',
    doc: 'Image pulls and storage.',
    section: {
      pull_timeout_seconds: { kind: 'int', default: 0, min: 0, doc: 'Deadline for a whole pull; 0: none beyond kubelet\'s own deadline and the stall detector.' },
      stall_bytes: { kind: 'int', default: 1024 * 1024, min: 1, doc: 'A blob download that moves fewer than this many bytes in stall_window_seconds is treated as stalled and resumed.' },
      stall_window_seconds: { kind: 'int', default: 60, min: 1, doc: 'Window for the stall detector.' },
      max_concurrent_downloads: { kind: 'int', default: 3, min: 1, max: 64, doc: 'Parallel layer downloads per pull (one registry serves at most 4x this across pulls).' },
      pinned_images: { kind: 'list', default: [], doc: 'Image names or globs (e.g. "registry.k8s.io/pause*") reported pinned so kubelet\'s image GC keeps them.', reload: true },
    },
  },
  registries: {
    kind: 'section',
    doc: 'Where images come from (compatible in spirit with containers-registries.conf).',
    section: {
      unqualified_search: { kind: 'list', default: ['docker.io'], doc: 'Registries tried in order for short names like "busybox".', reload: true },
      insecure: { kind: 'list', default: [], doc: 'Registries (host[:port]) spoken to over plain HTTP. localhost, 127.0.0.0/8 and ::1 always are.', reload: true },
      blocked: { kind: 'list', default: [], doc: 'Registries or prefixes that must never be pulled from.', reload: true },
      mirrors: { kind: 'tables', entry: mirrorEntry, default: [], doc: 'Mirror rules, e.g. [[registries.mirrors]] prefix = "registry.k8s.io" locations = ["127.0.0.1:5000"].', reload: true },
    },
  },
  metrics: {
    kind: 'section',
    doc: 'Prometheus metrics endpoint.',
    section: {
      enable: { kind: 'bool', default: true, doc: 'Serve /metrics.', flag: true },
      address: { kind: 'string', default: '127.0.0.1:9537', doc: 'host:port of the metrics endpoint.', flag: true },
      tls_cert: { kind: 'string', default: '', doc: 'PEM certificate; with tls_key, serve metrics over HTTPS.' },
      tls_key: { kind: 'string', default: '', doc: 'PEM private key for tls_cert.' },
    },
  },
  stream: {
    kind: 'section',
    doc: 'HTTP server for exec, attach and port-forward sessions (URLs returned by Exec/Attach/PortForward).',
    section: {
      address: { kind: 'string', default: '127.0.0.1', doc: 'Address the streaming server binds.', flag: true },
      port: { kind: 'int', default: 0, min: 0, max: 65535, doc: 'Port of the streaming server; 0 picks a free port.', flag: true },
      tls_cert: { kind: 'string', default: '', doc: 'PEM certificate; with tls_key, serve streams over HTTPS.' },
      tls_key: { kind: 'string', default: '', doc: 'PEM private key for tls_cert.' },
      idle_timeout_seconds: { kind: 'int', default: 14400, min: 0, doc: 'Close a streaming session idle this long (0: never).' },
    },
  },
};

export interface RuntimeHandlerConfig {
  path: string;
  root: string;
  type: 'oci';
}

export interface MirrorRule {
  prefix: string;
  locations: string[];
  insecure: boolean;
  mirror_only: boolean;
}

/** The effective configuration; its shape mirrors `schema`. */
export interface CorralConfig {
  socket: string;
  listen_tcp: string;
  root: string;
  run_root: string;
  grpc_max_message_bytes: number;
  shutdown_grace_seconds: number;
  log: { level: 'debug' | 'info' | 'warn' | 'error'; format: 'text' | 'json' };
  runtime: {
    cgroup_manager: 'cgroupfs' | 'systemd';
    default_handler: string;
    handlers: Record<string, RuntimeHandlerConfig>;
    conmon: string;
    pause_image: string;
    catatonit: string;
    log_size_max: number;
    restrict_oom_score_adj: 'auto' | 'true' | 'false';
    default_ulimits: string[];
  };
  cni: { conf_dirs: string[]; plugin_dirs: string[]; timeout_seconds: number };
  image: {
    pull_timeout_seconds: number;
    stall_bytes: number;
    stall_window_seconds: number;
    max_concurrent_downloads: number;
    pinned_images: string[];
  };
  registries: { unqualified_search: string[]; insecure: string[]; blocked: string[]; mirrors: MirrorRule[] };
  metrics: { enable: boolean; address: string; tls_cert: string; tls_key: string };
  stream: { address: string; port: number; tls_cert: string; tls_key: string; idle_timeout_seconds: number };
}
