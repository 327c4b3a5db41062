import { describe, expect, it } from 'vitest';
import { Tracer } from '../../appliances/trace-run.ts';
import { compileSource } from '../../compiler/compile.ts';
import { parseIpv4Address } from '../../runtime/wire/ipv4.ts';
import { decide, decidedBy, describePacket, HOST_B, packetSpec, randomAclPackets, randomPolicy, routerConfig } from '../helpers/acl-model.ts';

/*
 * The compiled forward Filter, run by the appliance's own packet path
 * (`nacl trace`), against a first-match model written apart from the
 * compiler: random policies of source sets, port sets, comparisons and
 * protocol blocks. test/e2e/firewall-vs-nftables.test.ts holds the booted
 * appliance and Linux nftables to the same model on real packets.
 */

const B = parseIpv4Address(HOST_B)!;

describe('a forward Filter decides as a first-match model of its rules', () => {
  for (const seed of Array.from({ length: 20 }, (_, i) => 100 + i)) {
    it(`policy ${seed}: every packet gets the model's verdict`, () => {
      const policy = randomPolicy(seed);
      const compiled = compileSource(routerConfig(policy), `policy-${seed}.nacl`);
      expect(compiled.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
      const tracer = new Tracer(compiled.ir!);
      const packets = randomAclPackets(policy, 300, seed);
      const wrong = packets
        .map((p) => ({ p, trace: tracer.run('a_side', packetSpec(p, B)) }))
        .filter(({ p, trace }) => trace.verdict !== decide(policy, p) || (trace.verdict === 'accept' && trace.egress !== 'b_side'))
        .map(({ p, trace }) => `${describePacket(p)}: model ${decide(policy, p)}, appliance ${trace.verdict} (${trace.reason})`);
      expect(wrong).toEqual([]);
      expect(decidedBy(policy, packets).filter((n) => n > 0).length).toBeGreaterThanOrEqual(policy.rules.length / 2);
    });
  }
});
