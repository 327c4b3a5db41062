import { openTap } from '../runtime/drivers/tap.ts';

/*
 * A bare TAP wire: two TAP devices whose frames this process copies from
 * one to the other, with no stack in between - what any program that
 * moves packets through TAP devices pays before it does anything with
 * them. The baseline the TAP benchmarks measure the appliance against.
 */
export function tapWire(nameA: string, nameB: string): { close(): void } {
  const a = openTap(nameA);
  const b = openTap(nameB);
  a.onReceive((frames) => b.send(frames));
  b.onReceive((frames) => a.send(frames));
  return {
    close() {
      a.close();
      b.close();
    },
  };
}
