import { Code, type RpcError } from '@srpc/protocol'
import { EventEmitter } from 'eventemitter3'
import { describe, expect, it } from 'vitest'
import { useFakeClock } from '../test/fake-clock'
import {
  advance,
  closeNetworksAfterEach,
  type MemoryLink,
  MemoryNetwork,
  type ServerMode,
  settle,
} from '../test/memory-network'
import type { ClientConnection, ConnectionEvents } from './connection'
import type { PoolEvents } from './connectivity-state'
import { type Endpoint, newEndpoint } from './ejection'
import { addressOf } from './resolver'
import { Subchannel, type SubchannelHost } from './subchannel'

const SCHEDULE = { initial: 100, multiplier: 2, max: 500 }

/** One server, one slot: what the balancer would do, reduced to recording. */
function setup(mode: ServerMode) {
  const network = new MemoryNetwork({ backoff: SCHEDULE, helloTimeout: 2000 }).set('10.0.0.1:8443', mode)
  const endpoint: Endpoint = newEndpoint(addressOf('10.0.0.1', 8443), SCHEDULE)
  const events = new EventEmitter<PoolEvents>()
  const reconnecting: { attempt: number; delay: number; code: string | undefined }[] = []
  events.on('reconnecting', ({ attempt, delay, error }) =>
    reconnecting.push({ attempt, delay, code: error?.code }),
  )
  const failures: RpcError[] = []
  const owners = new Map<ClientConnection, Subchannel | undefined>()
  const connectionEvents: ConnectionEvents = {
    onClose: (connection, error) => {
      const slot = owners.get(connection)
      owners.delete(connection)
      if (slot?.connection === connection) slot.closed(connection, error)
    },
    onGoaway: () => {},
  }
  const host: SubchannelHost = {
    options: network.options,
    events,
    connect: (address, signal) => network.connect(address, signal, connectionEvents),
    closed: false,
    ready: [],
    queued: 0,
    resolving: false,
    resolveError: undefined,
    lastError: undefined,
    choose: () => endpoint,
    hasUntried: () => false,
    own: (connection, slot) => owners.set(connection, slot),
    attemptFailed: (_endpoint, error) => failures.push(error),
    readmit: () => {},
    backedOff: () => {},
    roundFailed: () => {},
    rotated: () => {},
    changed: () => {},
  }
  const slot = new Subchannel(0, host)
  return { network, slot, host, reconnecting, failures }
}

useFakeClock()
closeNetworksAfterEach()

/** A call on `link` that the server answers, run on the fake clock. */
async function answered(link: MemoryLink): Promise<void> {
  const reply = link.answer()
  await settle()
  expect((await reply).toString()).toBe('ok')
}

describe('Subchannel', () => {
  it('spaces attempts to a refusing server by the backoff schedule, growing to its max', async () => {
    const { network, slot, reconnecting, failures } = setup('refuse')
    slot.dial()
    await advance(2200)
    // Delays 200, 400, 500 (max), 500…: attempts at 0, 200, 600, 1100, 1600, 2100.
    expect(network.attemptsTo('10.0.0.1:8443')).toEqual([0, 200, 600, 1100, 1600, 2100])
    expect(reconnecting.slice(0, 4)).toEqual([
      { attempt: 1, delay: 200, code: Code.UNAVAILABLE },
      { attempt: 2, delay: 400, code: Code.UNAVAILABLE },
      { attempt: 3, delay: 500, code: Code.UNAVAILABLE },
      { attempt: 4, delay: 500, code: Code.UNAVAILABLE },
    ])
    expect(failures.every((e) => e.code === Code.UNAVAILABLE)).toBe(true)
    expect(slot.state).toBe('transient_failure')
    expect(slot.stats().failures).toBe(6)
    slot.retire()
  })

  it('replaces a connection that worked at once, but at most once per backoff.initial', async () => {
    const { network, slot, host } = setup('up')
    slot.dial()
    await settle()
    expect(slot.state).toBe('ready')
    expect(host.ready).toHaveLength(1)
    await answered(network.open('10.0.0.1:8443')[0])
    network.open('10.0.0.1:8443')[0].lose()
    await settle()
    // The first loss of a connection that served a call: redialled without waiting.
    expect(network.attemptsTo('10.0.0.1:8443')).toEqual([0, 0])
    expect(slot.state).toBe('ready')
    await advance(50)
    await answered(network.open('10.0.0.1:8443')[0])
    network.open('10.0.0.1:8443')[0].lose()
    await settle()
    // A second loss within 100 ms waits one backoff step (200 ms) instead of looping. It was a
    // graceful one (no error): the slot is reconnecting, not failing, so calls wait for it.
    expect(network.attemptsTo('10.0.0.1:8443')).toEqual([0, 0])
    expect(slot.state).toBe('connecting')
    await advance(200)
    expect(network.attemptsTo('10.0.0.1:8443')).toEqual([0, 0, 250])
    expect(slot.state).toBe('ready')
    slot.retire()
  })

  it('is in TRANSIENT_FAILURE when a second loss within backoff.initial came with an error', async () => {
    const { network, slot } = setup('up')
    slot.dial()
    await settle()
    network.open('10.0.0.1:8443')[0].lose()
    await advance(50)
    network.open('10.0.0.1:8443')[0].lose(new Error('connection reset'))
    await settle()
    expect(slot.state).toBe('transient_failure')
    await advance(200)
    expect(slot.state).toBe('ready')
    slot.retire()
  })

  it('takes a refusal from a server that is shutting down as graceful: CONNECTING, calls wait, then the next server', async () => {
    const { network, slot, reconnecting } = setup('up')
    slot.dial()
    await settle()
    await answered(network.open('10.0.0.1:8443')[0])
    // The server drains (GOAWAY, then closes): the slot redials at once, and this time the
    // draining server takes the connection only to refuse it with UNAVAILABLE.
    const draining = network.server('10.0.0.1:8443').shutdown({ timeout: 0 })
    await settle()
    await draining
    await settle()
    expect(network.attemptsTo('10.0.0.1:8443')).toEqual([0, 0])
    expect(reconnecting.at(-1)?.code).toBe(Code.UNAVAILABLE)
    // Not TRANSIENT_FAILURE: calls that do not wait for ready are not failed fast meanwhile.
    expect(slot.state).toBe('connecting')
    network.replace('10.0.0.1:8443')
    await advance(200)
    expect(network.attemptsTo('10.0.0.1:8443')).toEqual([0, 0, 200])
    expect(slot.state).toBe('ready')
    slot.retire()
  })

  it('counts a connection dropped before the server answered as a failed attempt', async () => {
    const { network, slot, reconnecting } = setup('silent')
    slot.dial()
    await settle()
    // The server took the connection but never said a word (no HELLO, no answer), then closed it.
    network.open('10.0.0.1:8443')[0].lose()
    await settle()
    expect(reconnecting).toEqual([{ attempt: 1, delay: 200, code: Code.UNAVAILABLE }])
    expect(network.attemptsTo('10.0.0.1:8443')).toEqual([0])
    await advance(200)
    expect(network.attemptsTo('10.0.0.1:8443')).toEqual([0, 200])
    slot.retire()
  })

  it('closes a connection that arrives after the slot was retired', async () => {
    const { network, slot, host } = setup('up')
    slot.dial()
    slot.retire()
    await settle()
    expect(network.links.map((link) => link.state)).toEqual(['closed'])
    expect(host.ready).toHaveLength(0)
    expect(slot.state).toBe('idle')
  })
})
