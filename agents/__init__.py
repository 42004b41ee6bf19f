"""Observatory agents: one call instruments a service with traces, logs, RED metrics, pushed metrics and discovery."""

from agents.agent import Agent, start
from agents.config import AgentConfig, AgentConfigError, load_config
from agents.discovery import DiscoveryClient, Instance
from agents.instrument import instrument
from agents.push import MetricsPusher

__all__ = [
    "Agent",
    "AgentConfig",
    "AgentConfigError",
    "DiscoveryClient",
    "Instance",
    "MetricsPusher",
    "instrument",
    "load_config",
    "start",
]
