//! World size 1: every collective is the identity. Runs without any launcher.

use crate::error::Result;
use tch::{Device, Tensor};

use crate::traffic::{tensor_bytes, Traffic, TrafficCounter};
use crate::{block_rows, check_tensor, Collective};

#[derive(Debug)]
pub struct SingleProcess {
    device: Device,
    traffic: TrafficCounter,
}

impl SingleProcess {
    pub fn new(device: Device) -> Self {
        Self {
            device,
            traffic: TrafficCounter::default(),
        }
    }
}

impl Collective for SingleProcess {
    fn rank(&self) -> usize {
        0
    }
    fn world_size(&self) -> usize {
        1
    }
    fn local_rank(&self) -> usize {
        0
    }
    fn device(&self) -> Device {
        self.device
    }
    fn backend(&self) -> &'static str {
        "single"
    }

    fn all_gather(&self, t: &Tensor) -> Result<Tensor> {
        check_tensor(self, t, "all_gather")?;
        self.traffic.all_gather(tensor_bytes(t));
        Ok(t.copy())
    }

    fn reduce_scatter(&self, t: &Tensor) -> Result<Tensor> {
        check_tensor(self, t, "reduce_scatter")?;
        block_rows(t, 1, "reduce_scatter")?;
        self.traffic.reduce_scatter(tensor_bytes(t));
        Ok(t.copy())
    }

    fn all_reduce(&self, t: &mut Tensor) -> Result<()> {
        check_tensor(self, t, "all_reduce")?;
        self.traffic.all_reduce(tensor_bytes(t));
        Ok(())
    }

    fn broadcast(&self, t: &mut Tensor, root: usize) -> Result<()> {
        ensure!(root == 0, "broadcast from rank {root} in a world of 1");
        check_tensor(self, t, "broadcast")?;
        self.traffic.broadcast(tensor_bytes(t));
        Ok(())
    }

    fn barrier(&self) -> Result<()> {
        Ok(())
    }

    fn split(&self, _color: usize) -> Result<Box<dyn Collective>> {
        Ok(Box::new(SingleProcess::new(self.device)))
    }

    fn traffic(&self) -> Traffic {
        self.traffic.get()
    }
}
