/** The part of jStat (a CommonJS package without types) the analytics use. */
declare module 'jstat' {
  const jstat: { jStat: { studentt: { cdf(x: number, dof: number): number } } };
  export default jstat;
}
