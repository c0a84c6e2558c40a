/**
 * ExecSync `true` through the daemon (gRPC over its socket) against the floor measured in the same run:
 * `runc exec <container> true` on the same container, done directly; alternating A/B/B/A.
 * Prints "skipped: CreateContainer not implemented" while the daemon answers UNIMPLEMENTED.
 *   npx tsc -p . --outDir dist-x && node dist-x/bench/exec.js      (BENCH_QUICK=1: fewer rounds)
 */
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { startRegistry } from '../e2e/harness/registry';
import { buildBusyboxImage, pushImage } from '../e2e/harness/oci-image';
import { run } from '../src/sys/exec';
import { NETWORKS } from './lib-net';
import { leftOversText, startCorral, type Peer } from './lib-peer';
import { alternate, n, ratio, round, summarize, timed } from './lib-stats';
import { table } from './lib-table';
import { spdyExec } from '../test/streaming/clients';

const CGROUP = '/corral-bench-exec';
const ROUNDS = n(60, 10);
const GRPC_UNIMPLEMENTED = 12;

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('bench/exec: needs root; skipped');
    return;
  }
  const reg = await startRegistry();
  let peer: Peer | undefined;
  try {
    await pushImage(reg, 'bench/busybox', '1', buildBusyboxImage());
    const image = `${reg.host}/bench/busybox:1`;
    peer = await startCorral({ network: NETWORKS.corral, cgroupParent: CGROUP });
    const p = peer;
    await p.img.PullImage({ image: { image } });
    const ns = { network: 'POD' as const, pid: 'CONTAINER' as const, ipc: 'POD' as const, target_id: '' };
    const podCfg = { metadata: { name: 'exec', namespace: 'bench', uid: 'uid-exec', attempt: 0 }, hostname: 'exec', log_directory: path.join(p.dir, 'logs'), linux: { cgroup_parent: CGROUP, security_context: { namespace_options: ns } } };
    mkdirSync(podCfg.log_directory, { recursive: true });
    const pod = (await p.rt.RunPodSandbox({ config: podCfg })).pod_sandbox_id;
    const ctrCfg = { metadata: { name: 'sleep', attempt: 0 }, image: { image }, command: ['sleep', '3600'], log_path: 'sleep.log', linux: { security_context: { namespace_options: ns } } };
    const created = await p.rt.CreateContainer({ pod_sandbox_id: pod, config: ctrCfg, sandbox_config: podCfg }).then(
      (r) => r.container_id,
      (e: { code?: number }) => {
        if (e.code === GRPC_UNIMPLEMENTED) return undefined;
        throw e;
      },
    );
    if (!created) {
      console.log('bench/exec: skipped: CreateContainer not implemented');
      return;
    }
    await p.rt.StartContainer({ container_id: created });
    const probe = await p.rt.ExecSync({ container_id: created, cmd: ['sh', '-c', 'echo ok'], timeout: '10' });
    if (probe.stdout.toString().trim() !== 'ok') throw new Error(`ExecSync answered ${JSON.stringify(probe)}`);
    const runcRoot = await p.runcRoot(created);
    // Warm-up both paths once.
    await p.rt.ExecSync({ container_id: created, cmd: ['true'], timeout: '10' });
    await run('/usr/sbin/runc', [`--root=${runcRoot}`, 'exec', created, 'true'], { timeoutMs: 30_000 });

    // Streaming exec: the Exec RPC for a URL, then the SPDY session kubelet/crictl would open, until the exit status.
    const streamExec = async () => {
      const { url } = await p.rt.Exec({ container_id: created, cmd: ['true'], stdout: true, stderr: true });
      const res = await spdyExec(url, { stderr: true });
      if (res.status?.status !== 'Success') throw new Error(`streaming exec failed: ${res.error}`);
    };
    await streamExec();
    const r = await alternate(ROUNDS, {
      corral: () => timed(() => p.rt.ExecSync({ container_id: created, cmd: ['true'], timeout: '10' })),
      stream: () => timed(streamExec),
      floor: () => timed(() => run('/usr/sbin/runc', [`--root=${runcRoot}`, 'exec', created, 'true'], { timeoutMs: 30_000 })),
    });
    const c = summarize(r.corral);
    const st = summarize(r.stream);
    const f = summarize(r.floor);
    console.log(`exec \`true\`, ${ROUNDS} rounds alternating with the floor (runc exec on the same container)\n`);
    console.log(table(['path', 'p50 ms', 'p95 ms', 'min ms'], [['corral ExecSync', c.p50, c.p95, c.min], ['corral Exec (SPDY session)', st.p50, st.p95, st.min], ['floor: runc exec', f.p50, f.p95, f.min]]));
    console.log(`\nExecSync overhead over the floor: p50 ${(c.p50 - f.p50).toFixed(1)} ms (ratio ${ratio(c.p50, f.p50).toFixed(2)})`);
    console.log(`streaming exec overhead over the floor: p50 ${(st.p50 - f.p50).toFixed(1)} ms (ratio ${ratio(st.p50, f.p50).toFixed(2)})`);
    console.log('RESULT ' + JSON.stringify({ bench: 'exec', rounds: ROUNDS, corral: c, stream: st, floor: f, overheadP50Ms: round(c.p50 - f.p50), ratioP50: round(ratio(c.p50, f.p50), 3), streamRatioP50: round(ratio(st.p50, f.p50), 3) }));
  } finally {
    if (peer) console.log(`cleanup: left behind ${leftOversText(await peer.stop())}`);
    await reg.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
