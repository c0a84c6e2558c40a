import type { RuntimeInfo } from '../daemon/runtime-info';
import { CORRAL_VERSION, KUBELET_API_VERSION, RUNTIME_API_VERSION, RUNTIME_NAME } from '../core/version';
import type { VersionResponse } from '../../cri-api/generated/runtime/v1/VersionResponse';
import type { StatusRequest__Output } from '../../cri-api/generated/runtime/v1/StatusRequest';
import type { StatusResponse } from '../../cri-api/generated/runtime/v1/StatusResponse';
import type { RuntimeConfigResponse } from '../../cri-api/generated/runtime/v1/RuntimeConfigResponse';
import type { UpdateRuntimeConfigRequest__Output } from '../../cri-api/generated/runtime/v1/UpdateRuntimeConfigRequest';
import type { HandlerSet } from './types';

/** Version, Status, RuntimeConfig, UpdateRuntimeConfig. */
export function runtimeInfoHandlers(info: RuntimeInfo, cgroupManager: () => 'cgroupfs' | 'systemd'): HandlerSet {
  return {
    unary: {
      Version: async (): Promise<VersionResponse> => ({
        version: KUBELET_API_VERSION,
        runtime_name: RUNTIME_NAME,
        runtime_version: CORRAL_VERSION,
        runtime_api_version: RUNTIME_API_VERSION,
      }),
      Status: async (req: StatusRequest__Output): Promise<StatusResponse> => ({
        status: { conditions: info.conditions() },
        info: req.verbose ? info.info() : {},
        // The default handler is also listed under the empty name, as kubelet looks it up that way.
        runtime_handlers: ['', ...info.handlers()].map((name) => ({
          name,
          features: { recursive_read_only_mounts: false, user_namespaces: false },
        })),
        features: { supplemental_groups_policy: false, user_namespaces_host_network: false },
      }),
      RuntimeConfig: async (): Promise<RuntimeConfigResponse> => ({
        linux: { cgroup_driver: cgroupManager() === 'systemd' ? 'SYSTEMD' : 'CGROUPFS' },
      }),
      UpdateRuntimeConfig: async (req: UpdateRuntimeConfigRequest__Output) => {
        await info.updatePodCidr(req.runtime_config?.network_config?.pod_cidr ?? '');
        return {};
      },
    },
  };
}
