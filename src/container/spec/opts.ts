import type { ContainerSpecInput, HostContext, ResolvedUser } from './input';
import type { OciSpec } from '../../oci/types';

/** What options share while one spec is built: the request, host facts, and results for the caller. */
export interface SpecContext {
  readonly input: ContainerSpecInput;
  readonly host: HostContext;
  /** Set by the user option; reported by ContainerStatus. */
  user: ResolvedUser;
  stopSignal: string;
  imageVolumes: { containerPath: string; hostPath: string }[];
  warnings: string[];
}

/** A composable spec option (containerd's SpecOpts): mutates the spec, throws a CorralError on bad input. */
export type SpecOpt = (spec: OciSpec, ctx: SpecContext) => void;

export function applyOpts(spec: OciSpec, ctx: SpecContext, opts: readonly SpecOpt[]): OciSpec {
  for (const o of opts) o(spec, ctx);
  return spec;
}
