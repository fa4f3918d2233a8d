// Input checks shared by the request encoders: errors name the object kind, the field and the value.
import { AddressError } from '../net/ip.js';

/** Parse one field with `parse`, re-throwing its error prefixed by "<kind> <field>: ". */
export function parseField<T>(kind: string, field: string, text: string, parse: (s: string) => T): T {
  try {
    return parse(text);
  } catch (err) {
    throw new AddressError(`${kind} ${field}: ${(err as Error).message}`);
  }
}

/** An optional integer field within [min, max]. */
export function checkInt(kind: string, field: string, value: number | undefined, min: number, max: number): void {
  if (value !== undefined && (!Number.isInteger(value) || value < min || value > max)) {
    throw new RangeError(`${kind} ${field} ${JSON.stringify(value)}: must be an integer ${min}-${max}`);
  }
}
