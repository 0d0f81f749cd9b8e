export { Decimal, type DecimalValue } from './decimal.js';
export * from './units.js';
export * from './parse.js';
