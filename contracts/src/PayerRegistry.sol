// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IPayerRegistry} from "./interfaces/IPayerRegistry.sol";
import {FeeToken} from "./FeeToken.sol";

/// Payer balances in FeeToken. Tokens only ever move, never vanish: what the registry holds is
/// what payers may still claim (positive balances plus pending withdrawals) plus the excess,
/// i.e. settled fees backed by tokens and not yet sent to the DistributionManager.
contract PayerRegistry is IPayerRegistry {
    struct Withdrawal {
        uint256 amount;
        uint64 withdrawableTimestamp;
    }

    address public immutable admin;
    address public immutable token;
    uint64 public immutable withdrawLockPeriod;

    address public settler;
    address public feeDistributor;

    mapping(address => int256) private _balances;
    mapping(address => Withdrawal) private _withdrawals;

    uint256 public totalDeposited;
    uint256 public totalWithdrawn;
    uint256 public totalSettled;
    /// Sum of all negative balances, as a positive number: settled fees not backed by tokens.
    uint256 public totalDebt;
    uint256 public totalExcessTransferred;

    error NotAdmin(address caller);
    error NotSettler(address caller);
    error ZeroAddress();
    error ZeroAmount();
    error AlreadySet(address current);
    error NotSet();
    error InsufficientBalance(address payer, int256 balance, uint256 needed);
    error PendingWithdrawalExists(address payer, uint256 amount);
    error NoPendingWithdrawal(address payer);
    error WithdrawalLocked(address payer, uint64 withdrawableTimestamp, uint256 now_);
    error PayerInDebt(address payer, int256 balance);
    error ArrayLengthMismatch(uint256 payers, uint256 fees);
    error AmountTooLarge(uint256 amount);
    error TransferFailed();

    constructor(address admin_, address token_, uint64 withdrawLockPeriod_) {
        if (admin_ == address(0) || token_ == address(0)) revert ZeroAddress();
        admin = admin_;
        token = token_;
        withdrawLockPeriod = withdrawLockPeriod_;
    }

    function setSettler(address payerReportManager) external {
        if (msg.sender != admin) revert NotAdmin(msg.sender);
        if (payerReportManager == address(0)) revert ZeroAddress();
        if (settler != address(0)) revert AlreadySet(settler);
        settler = payerReportManager;
    }

    function setFeeDistributor(address distributionManager) external {
        if (msg.sender != admin) revert NotAdmin(msg.sender);
        if (distributionManager == address(0)) revert ZeroAddress();
        if (feeDistributor != address(0)) revert AlreadySet(feeDistributor);
        feeDistributor = distributionManager;
    }

    function deposit(address payer, uint256 amount) external {
        if (payer == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        if (amount > uint256(type(int256).max)) revert AmountTooLarge(amount);
        _pull(msg.sender, amount);
        totalDeposited += amount;
        _setBalance(payer, _balances[payer] + int256(amount));
        emit Deposit(payer, amount);
    }

    function getBalance(address payer) external view returns (int256) {
        return _balances[payer];
    }

    function requestWithdrawal(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        Withdrawal storage pending = _withdrawals[msg.sender];
        if (pending.amount != 0) revert PendingWithdrawalExists(msg.sender, pending.amount);
        int256 balance = _balances[msg.sender];
        if (balance < 0 || uint256(balance) < amount) {
            revert InsufficientBalance(msg.sender, balance, amount);
        }
        _setBalance(msg.sender, balance - int256(amount));
        uint64 unlock = uint64(block.timestamp) + withdrawLockPeriod;
        _withdrawals[msg.sender] = Withdrawal(amount, unlock);
        emit WithdrawalRequested(msg.sender, amount, unlock);
    }

    function cancelWithdrawal() external {
        uint256 amount = _withdrawals[msg.sender].amount;
        if (amount == 0) revert NoPendingWithdrawal(msg.sender);
        delete _withdrawals[msg.sender];
        _setBalance(msg.sender, _balances[msg.sender] + int256(amount));
        emit WithdrawalCancelled(msg.sender);
    }

    /// Refused while the payer is in debt, so a withdrawal cannot outrun a settlement.
    function finalizeWithdrawal(address recipient) external {
        if (recipient == address(0)) revert ZeroAddress();
        Withdrawal memory pending = _withdrawals[msg.sender];
        if (pending.amount == 0) revert NoPendingWithdrawal(msg.sender);
        if (block.timestamp < pending.withdrawableTimestamp) {
            revert WithdrawalLocked(msg.sender, pending.withdrawableTimestamp, block.timestamp);
        }
        int256 balance = _balances[msg.sender];
        if (balance < 0) revert PayerInDebt(msg.sender, balance);
        delete _withdrawals[msg.sender];
        totalWithdrawn += pending.amount;
        _push(recipient, pending.amount);
        emit WithdrawalFinalized(msg.sender, recipient, pending.amount);
    }

    function getPendingWithdrawal(address payer)
        external
        view
        returns (uint256 amount, uint64 withdrawableTimestamp)
    {
        Withdrawal memory pending = _withdrawals[payer];
        return (pending.amount, pending.withdrawableTimestamp);
    }

    function settleUsage(address[] calldata payers, uint256[] calldata fees) external {
        if (msg.sender != settler) revert NotSettler(msg.sender);
        if (payers.length != fees.length) revert ArrayLengthMismatch(payers.length, fees.length);
        uint256 total;
        for (uint256 i; i < payers.length; ++i) {
            uint256 fee = fees[i];
            if (fee > uint256(type(int256).max)) revert AmountTooLarge(fee);
            _setBalance(payers[i], _balances[payers[i]] - int256(fee));
            total += fee;
            emit UsageSettled(payers[i], fee);
        }
        totalSettled += total;
    }

    /// Held tokens minus what payers may still claim. Derivation: the sum of all balances and
    /// pending withdrawals is totalDeposited - totalWithdrawn - totalSettled; payers may claim
    /// that plus totalDebt (debts are not claims against the registry).
    function excess() public view returns (uint256) {
        uint256 held = FeeToken(token).balanceOf(address(this));
        uint256 claimable = totalDeposited + totalDebt - totalWithdrawn - totalSettled;
        return held > claimable ? held - claimable : 0;
    }

    function sendExcessToFeeDistributor() external returns (uint256 amount) {
        if (feeDistributor == address(0)) revert NotSet();
        amount = excess();
        if (amount == 0) return 0;
        totalExcessTransferred += amount;
        _push(feeDistributor, amount);
        emit ExcessTransferred(amount);
    }

    function _setBalance(address payer, int256 balance) private {
        int256 old = _balances[payer];
        if (old < 0) totalDebt -= uint256(-old);
        if (balance < 0) totalDebt += uint256(-balance);
        _balances[payer] = balance;
    }

    function _pull(address from, uint256 amount) private {
        if (!FeeToken(token).transferFrom(from, address(this), amount)) revert TransferFailed();
    }

    function _push(address to, uint256 amount) private {
        if (!FeeToken(token).transfer(to, amount)) revert TransferFailed();
    }
}
