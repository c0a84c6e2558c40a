import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { isCorralError } from '../../../src/core/errors';
import { buildContainerSpec, convertSeccompProfile, defaultSeccompProfile, DEFAULT_CAPABILITIES } from '../../../src/container/spec';
import type { OciSeccomp } from '../../../src/container/spec';
import { baseInput, fullHost, tempDir } from './fixture';

/** The action the profile gives a syscall called with no arguments (unconditional rules only). */
function unconditional(p: OciSeccomp, name: string): string {
  const rule = (p.syscalls ?? []).find((s) => s.names.includes(name) && !s.args);
  return rule ? rule.action : p.defaultAction;
}

test('RuntimeDefault: allowlist with ERRNO default, arch map, capability-conditional syscalls', () => {
  const p = defaultSeccompProfile(DEFAULT_CAPABILITIES, 'x64');
  assert.equal(p.defaultAction, 'SCMP_ACT_ERRNO');
  assert.deepEqual(p.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  for (const ok of ['read', 'write', 'execve', 'arch_prctl', 'ptrace', 'rseq']) assert.equal(unconditional(p, ok), 'SCMP_ACT_ALLOW', ok);
  assert.equal(unconditional(p, 'read'), 'SCMP_ACT_ALLOW');
  assert.equal(unconditional(p, 'chroot'), 'SCMP_ACT_ALLOW', 'CAP_SYS_CHROOT is a default capability');
  for (const blocked of ['unshare', 'mount', 'setns', 'reboot', 'kexec_load', 'init_module', 'bpf', 'process_vm_readv', 'keyctl']) {
    assert.equal(unconditional(p, blocked), 'SCMP_ACT_ERRNO', blocked);
  }
  const clone = p.syscalls!.find((s) => s.names.includes('clone'))!;
  assert.deepEqual(clone.args, [{ index: 0, value: 0x7e020000, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }]);
  assert.deepEqual(p.syscalls!.find((s) => s.names.includes('clone3')), { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 });

  const admin = defaultSeccompProfile([...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN', 'CAP_SYS_PTRACE'], 'x64');
  for (const n of ['unshare', 'mount', 'setns', 'clone', 'clone3', 'process_vm_readv']) assert.equal(unconditional(admin, n), 'SCMP_ACT_ALLOW', n);
  assert.ok(!admin.syscalls!.some((s) => s.args && s.names.includes('clone')), 'no clone flag filter with CAP_SYS_ADMIN');

  const noChroot = defaultSeccompProfile([], 'x64');
  assert.equal(unconditional(noChroot, 'chroot'), 'SCMP_ACT_ERRNO');

  const arm = defaultSeccompProfile(DEFAULT_CAPABILITIES, 'arm64');
  assert.deepEqual(arm.architectures, ['SCMP_ARCH_ARM', 'SCMP_ARCH_AARCH64']);
  assert.equal(unconditional(arm, 'set_tls'), 'SCMP_ACT_ALLOW');
  assert.equal(unconditional(arm, 'arch_prctl'), 'SCMP_ACT_ERRNO');
});

test('seccomp selection: unset/Unconfined none, RuntimeDefault built in from final caps, privileged none', (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  assert.equal(buildContainerSpec(baseInput(dir), fullHost()).spec.linux.seccomp, undefined);
  assert.equal(buildContainerSpec(baseInput(dir, { security: { seccomp: { kind: 'Unconfined' } } }), fullHost()).spec.linux.seccomp, undefined);
  const rd = buildContainerSpec(baseInput(dir, { security: { seccomp: { kind: 'RuntimeDefault' }, capabilities: { add: ['SYS_ADMIN'] } } }), fullHost()).spec;
  assert.equal(unconditional(rd.linux.seccomp!, 'unshare'), 'SCMP_ACT_ALLOW', 'profile follows the added capability');
  const pod = { ...baseInput(dir).pod, privileged: true };
  assert.equal(buildContainerSpec(baseInput(dir, { pod, security: { privileged: true, seccomp: { kind: 'RuntimeDefault' } } }), fullHost({ hostDevDir: dir })).spec.linux.seccomp, undefined);
});

test('Localhost profile: docker format converted, OCI format kept, bad path/JSON → InvalidArgument', (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const docker = {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 1,
    archMap: [
      { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86'] },
      { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] },
    ],
    syscalls: [
      { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW', args: [] },
      { name: 'mount', action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] } },
      { names: ['arch_prctl'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['amd64'] } },
      { names: ['chroot'], action: 'SCMP_ACT_ALLOW', excludes: { caps: ['CAP_SYS_CHROOT'] } },
      { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }] },
    ],
  };
  const file = path.join(dir, 'profile.json');
  writeFileSync(file, JSON.stringify(docker));
  const spec = buildContainerSpec(baseInput(dir, { security: { seccomp: { kind: 'Localhost', localhostRef: file } } }), fullHost()).spec;
  assert.deepEqual(spec.linux.seccomp, {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 1,
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'],
    syscalls: [
      { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' },
      { names: ['arch_prctl'], action: 'SCMP_ACT_ALLOW' },
      { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }] },
    ],
  });
  const oci = { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'], syscalls: [{ names: ['unshare'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] };
  assert.deepEqual(convertSeccompProfile(oci, []), oci);
  // With the localhost/ prefix form too.
  writeFileSync(path.join(dir, 'oci.json'), JSON.stringify(oci));
  const viaPrefix = buildContainerSpec(baseInput(dir, { security: { seccomp: { kind: 'Localhost', localhostRef: `localhost/${dir}/oci.json` } } }), fullHost());
  assert.deepEqual(viaPrefix.spec.linux.seccomp, oci);

  writeFileSync(path.join(dir, 'bad.json'), '{not json');
  writeFileSync(path.join(dir, 'noaction.json'), '{"syscalls":[]}');
  for (const ref of [path.join(dir, 'missing.json'), 'relative.json', path.join(dir, 'bad.json'), path.join(dir, 'noaction.json'), dir]) {
    assert.throws(
      () => buildContainerSpec(baseInput(dir, { security: { seccomp: { kind: 'Localhost', localhostRef: ref } } }), fullHost()),
      (e) => isCorralError(e, 'InvalidArgument'),
      ref,
    );
  }
});

test('AppArmor/SELinux accepted; Localhost AppArmor without AppArmor is an error', (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const rd = buildContainerSpec(baseInput(dir, { security: { apparmor: { kind: 'RuntimeDefault' }, selinux: { type: 'spc_t' } } }), fullHost());
  assert.equal(rd.spec.process.apparmorProfile, undefined);
  assert.throws(
    () => buildContainerSpec(baseInput(dir, { security: { apparmor: { kind: 'Localhost', localhostRef: 'localhost/p' } } }), fullHost()),
    (e) => isCorralError(e, 'InvalidArgument') && /apparmor/.test(e.message),
  );
  const aa = buildContainerSpec(baseInput(dir, { security: { apparmor: { kind: 'Localhost', localhostRef: 'localhost/my-prof' } } }), fullHost({ apparmorEnabled: true }));
  assert.equal(aa.spec.process.apparmorProfile, 'my-prof');
});
