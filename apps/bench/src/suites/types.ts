// The record every benchmark suite returns.
export interface BenchResult {
  suite: string;
  name: string;
  value: number;
  unit: string;
  detail?: string;
}
