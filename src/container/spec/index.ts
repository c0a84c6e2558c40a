export * from '../../oci/types';
export * from './input';
export { type SpecOpt, type SpecContext, applyOpts } from './opts';
export { buildContainerSpec, containerSpecOpts, withPrivileged } from './build';
export { stringifyJson, ociSpecJson } from './json';
export { detectHostContext, parseNofileHard } from './host';
export { mergeCommand, mergeEnv, resolveWorkingDir, resolveStopSignal, normalizeSignal } from './process';
export { resolveUser, userString, loadUserDb, readImageFile, parsePasswd, parseGroup } from './user';
export { computeCapabilities, normalizeCapability } from './capabilities';
export { toOciResources, validateResources } from './resources';
export { defaultSeccompProfile } from './seccomp-default';
export { convertSeccompProfile, loadLocalhostProfile } from './seccomp';
export { containerNamespaces } from './linux';
export { checkContainerPath } from './mounts';
export {
  DEFAULT_CAPABILITIES, DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, DEFAULT_PATH_ENV, DEFAULT_NOFILE, baseContainerSpec,
} from './defaults';
