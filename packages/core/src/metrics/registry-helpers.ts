import { Counter, Gauge, Histogram, type CounterConfiguration, type GaugeConfiguration, type HistogramConfiguration, type Registry } from 'prom-client'

/** Prefix of every Detour metric. */
export const METRIC_PREFIX = 'detour_'

function existing<T>(registry: Registry, name: string): T | undefined {
  return registry.getSingleMetric(name) as T | undefined
}

/**
 * Returns the counter registered under this name in `registry`, or registers a new one. Two Detour
 * components sharing a registry (or a component restarted in-process) reuse metrics instead of throwing.
 */
export function counter<T extends string>(registry: Registry, config: Omit<CounterConfiguration<T>, 'registers'>): Counter<T> {
  return existing<Counter<T>>(registry, config.name) ?? new Counter<T>({ ...config, registers: [registry] })
}

export function gauge<T extends string>(registry: Registry, config: Omit<GaugeConfiguration<T>, 'registers'>): Gauge<T> {
  return existing<Gauge<T>>(registry, config.name) ?? new Gauge<T>({ ...config, registers: [registry] })
}

export function histogram<T extends string>(registry: Registry, config: Omit<HistogramConfiguration<T>, 'registers'>): Histogram<T> {
  return existing<Histogram<T>>(registry, config.name) ?? new Histogram<T>({ ...config, registers: [registry] })
}
